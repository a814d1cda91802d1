"""A cheap analytic rigid-ion potential for fast, dependency-free tests.

Hand-written because no maintained pure-Python package provides a periodic
Coulomb + Born–Mayer ASE calculator (ASE has none; LAMMPS/GULP are external
binaries). It is a *test* potential: formal charges, Tosi–Fumi-like
Born–Mayer repulsion and damped-shifted-force (DSF) Coulomb summation,

    V_ij(r) = q_i q_j k_e [erfc(αr)/r − erfc(αR)/R + (erfc(αR)/R² + 2α/√π e^{−α²R²}/R)(r − R)]
              + b exp((σ_i + σ_j − r)/ρ),                                    r < R

(Fennell & Gezelter, J. Chem. Phys. 124, 234104 (2006), eq. 19; Tosi & Fumi,
J. Phys. Chem. Solids 25, 45 (1964)). It is smooth at the cutoff, pairwise
and therefore linear-scaling, and keeps rock-salt and anti-fluorite
structures mechanically stable, which is all the workflow tests need. It
supports only closed-shell ions with charge ±1/±2 (table below); any other
element is reported as unsupported, like an MLP without that element.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.neighborlist import neighbor_list
from scipy.special import erfc

from .errors import UnsupportedElements

#: Coulomb constant e²/(4πε₀) in eV·Å.
K_E = 14.399645

#: element → (formal charge e, Born–Mayer radius σ Å). Alkali and halide radii are
#: the Tosi–Fumi "basic radii"; O²⁻ and S²⁻ are Shannon ionic radii.
ION_TABLE: dict[str, tuple[float, float]] = {
    "Li": (1.0, 0.816), "Na": (1.0, 1.170), "K": (1.0, 1.463), "Rb": (1.0, 1.587),
    "Cs": (1.0, 1.720), "Mg": (2.0, 0.720), "Ca": (2.0, 1.000),
    "F": (-1.0, 1.179), "Cl": (-1.0, 1.585), "Br": (-1.0, 1.716), "I": (-1.0, 1.907),
    "O": (-2.0, 1.400), "S": (-2.0, 1.840), "Se": (-2.0, 1.980),
}


class RigidIonPotential(Calculator):
    """ASE calculator of the rigid-ion model above (energy eV, forces eV/Å, stress eV/Å³)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, cutoff_A: float = 9.0, alpha_per_A: float = 0.2,
                 b_eV: float = 0.211, rho_A: float = 0.33, **kwargs):
        super().__init__(**kwargs)
        self.cutoff_A = cutoff_A
        self.alpha = alpha_per_A
        self.b_eV = b_eV
        self.rho_A = rho_A
        rc, a = cutoff_A, alpha_per_A
        self._erfc_rc = erfc(a * rc) / rc
        self._dshift = erfc(a * rc) / rc**2 + 2 * a / np.sqrt(np.pi) * np.exp(-(a * rc) ** 2) / rc

    @staticmethod
    def supported_elements() -> set[str]:
        return set(ION_TABLE)

    def _ion_parameters(self, atoms: Atoms) -> tuple[np.ndarray, np.ndarray]:
        symbols = atoms.get_chemical_symbols()
        missing = sorted(set(symbols) - set(ION_TABLE))
        if missing:
            raise UnsupportedElements(
                f"rigid_ion potential has no parameters for {', '.join(missing)}"
            )
        q = np.array([ION_TABLE[s][0] for s in symbols])
        sigma = np.array([ION_TABLE[s][1] for s in symbols])
        return q, sigma

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        q, sigma = self._ion_parameters(atoms)
        i, j, r, D = neighbor_list("ijdD", atoms, self.cutoff_A)
        a, rc = self.alpha, self.cutoff_A
        qq = K_E * q[i] * q[j]
        e_r = erfc(a * r)
        gauss = 2 * a / np.sqrt(np.pi) * np.exp(-(a * r) ** 2)
        v_coul = qq * (e_r / r - self._erfc_rc + self._dshift * (r - rc))
        dv_coul = qq * (-e_r / r**2 - gauss / r + self._dshift)
        v_rep = self.b_eV * np.exp((sigma[i] + sigma[j] - r) / self.rho_A)
        dv_rep = -v_rep / self.rho_A
        dv = dv_coul + dv_rep  # dV/dr, eV/Å
        # DSF self energy keeps the total energy comparable to an Ewald sum.
        e_self = -(self._erfc_rc / 2 + a / np.sqrt(np.pi)) * K_E * np.sum(q**2)
        energy = 0.5 * np.sum(v_coul + v_rep) + e_self
        pair_f = (dv / r)[:, None] * D  # force on i from j (full list: each pair twice)
        forces = np.zeros((len(atoms), 3))
        np.add.at(forces, i, pair_f)
        virial = 0.5 * np.einsum("p,pa,pb->ab", dv / r, D, D)
        stress = virial / atoms.get_volume()
        self.results["energy"] = float(energy)
        self.results["free_energy"] = float(energy)
        self.results["forces"] = forces
        self.results["stress"] = stress.flat[[0, 4, 8, 5, 2, 1]]
