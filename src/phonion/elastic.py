"""Elastic constants of a relaxed crystal with the MLP, and the moduli derived from them.

Strain–stress method (as pymatgen's ``ElasticTensor.from_independent_strains`` and
matcalc's elasticity calculator): the relaxed cell is deformed by each of the six Voigt
strains at ±0.5 % and ±1 % (F = I + ε, ε symmetric; shear as engineering strain), the ions
are relaxed in the strained cell (relaxed-ion constants), and each column C_ij of the
stiffness is the least-squares slope of the stress σ_i against the strain ε_j, the stress of
the unstrained cell subtracted. pymatgen is not in the MLP environments where this stage
runs (they hold only the MLP package, numpy, scipy, ASE), so the fit and the moduli are
written here in numpy; ``tests/test_elastic.py`` checks both against pymatgen's elastic
module on the same strain–stress data.

Moduli (GPa): Voigt, Reuss and Hill bulk and shear moduli; Young's modulus
E = 9KG/(3K+G), Poisson ratio ν = (3K−2G)/(2(3K+G)), Pugh ratio K/G (ductile above
~1.75), Cauchy pressures C12−C44, C13−C55, C23−C66; Vickers hardness by Chen et al.,
Intermetallics 19, 1275 (2011): H_V = 2 (k² G)^0.585 − 3 with k = G/K; longitudinal and
transverse sound velocities v_l = √((K + 4G/3)/ρ), v_t = √(G/ρ), their mean
v_m = [(2/v_t³ + 1/v_l³)/3]^(−1/3), and the Debye temperature
θ_D = (h/k_B) (3 n / 4π)^(1/3) v_m with n atoms per volume (Anderson, J. Phys. Chem.
Solids 24, 909 (1963)).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.optimize import FIRE
from scipy import constants

from .errors import PhonionError
from .settings import ElasticSettings

EV_A3_TO_GPA = 1.0 / units.GPa
#: Voigt index → tensor indices.
VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


class ElasticError(PhonionError):
    """The stiffness is not positive definite: the structure is mechanically unstable."""


def voigt_strain(j: int, magnitude: float) -> np.ndarray:
    """Symmetric 3×3 strain with Voigt component j = magnitude (engineering shear)."""
    e = np.zeros((3, 3))
    a, b = VOIGT[j]
    if a == b:
        e[a, a] = magnitude
    else:
        e[a, b] = e[b, a] = magnitude / 2
    return e


def to_voigt(stress: np.ndarray) -> np.ndarray:
    return np.array([stress[a, b] for a, b in VOIGT])


def strained_stresses(atoms: Atoms, calc, magnitudes=(-0.01, -0.005, 0.005, 0.01),
                      fmax_eV_A: float = 0.005, max_steps: int = 200,
                      relax_ions: bool = True) -> tuple[list[np.ndarray], list[np.ndarray],
                                                        np.ndarray]:
    """(strains, stresses in GPa as 3×3 tensors, stress of the unstrained cell) for the six
    Voigt strains at each magnitude. ASE's sign: tensile stress positive."""

    def stress_of(a: Atoms) -> np.ndarray:
        a.calc = calc
        if relax_ions:
            FIRE(a, logfile=None).run(fmax=fmax_eV_A, steps=max_steps)
        return a.get_stress(voigt=False) * EV_A3_TO_GPA

    eq = stress_of(atoms.copy())
    strains, stresses = [], []
    for j in range(6):
        for m in magnitudes:
            e = voigt_strain(j, m)
            a = atoms.copy()
            a.set_cell(atoms.cell.array @ (np.eye(3) + e).T, scale_atoms=True)
            strains.append(e)
            stresses.append(stress_of(a))
    return strains, stresses, eq


def fit_stiffness(strains, stresses, eq_stress=None) -> np.ndarray:
    """6×6 stiffness (GPa) from strain–stress pairs in which one Voigt strain component is
    non-zero: column j is the least-squares slope (through the origin, after subtracting
    the unstrained stress) of each Voigt stress against ε_j; then symmetrised."""
    eq = np.zeros(6) if eq_stress is None else to_voigt(np.asarray(eq_stress))
    C = np.zeros((6, 6))
    for j in range(6):
        eps, sig = [], []
        for e, s in zip(strains, stresses, strict=True):
            ev = to_voigt(np.asarray(e)) * np.array([1, 1, 1, 2, 2, 2])
            if np.count_nonzero(np.abs(ev) > 1e-12) == 1 and abs(ev[j]) > 1e-12:
                eps.append(ev[j])
                sig.append(to_voigt(np.asarray(s)) - eq)
        if len(eps) < 1:
            raise ValueError(f"no strain along Voigt component {j + 1}")
        eps = np.array(eps)
        C[:, j] = np.array(sig).T @ eps / (eps @ eps)
    return 0.5 * (C + C.T)


def elastic_moduli(C: np.ndarray, density_kg_m3: float, atoms_per_A3: float) -> dict:
    """The moduli of a 6×6 stiffness (GPa); raises :class:`ElasticError` when C is not
    positive definite (Born criterion)."""
    eig = np.linalg.eigvalsh(C)
    if eig.min() <= 0:
        raise ElasticError(f"stiffness not positive definite (lowest eigenvalue "
                           f"{eig.min():.2f} GPa): mechanically unstable")
    S = np.linalg.inv(C)
    kv = (C[0, 0] + C[1, 1] + C[2, 2] + 2 * (C[0, 1] + C[1, 2] + C[0, 2])) / 9
    gv = (C[0, 0] + C[1, 1] + C[2, 2] - (C[0, 1] + C[1, 2] + C[0, 2])
          + 3 * (C[3, 3] + C[4, 4] + C[5, 5])) / 15
    kr = 1 / (S[0, 0] + S[1, 1] + S[2, 2] + 2 * (S[0, 1] + S[1, 2] + S[0, 2]))
    gr = 15 / (4 * (S[0, 0] + S[1, 1] + S[2, 2]) - 4 * (S[0, 1] + S[1, 2] + S[0, 2])
               + 3 * (S[3, 3] + S[4, 4] + S[5, 5]))
    k, g = (kv + kr) / 2, (gv + gr) / 2
    v_l = np.sqrt((k + 4 * g / 3) * 1e9 / density_kg_m3)
    v_t = np.sqrt(g * 1e9 / density_kg_m3)
    v_m = ((2 / v_t**3 + 1 / v_l**3) / 3) ** (-1 / 3)
    n_m3 = atoms_per_A3 * 1e30
    theta = constants.h / constants.k * (3 * n_m3 / (4 * np.pi)) ** (1 / 3) * v_m
    pugh_k = g / k
    return {
        "bulk_modulus_voigt_GPa": kv, "bulk_modulus_reuss_GPa": kr, "bulk_modulus_GPa": k,
        "shear_modulus_voigt_GPa": gv, "shear_modulus_reuss_GPa": gr, "shear_modulus_GPa": g,
        "young_modulus_GPa": 9 * k * g / (3 * k + g),
        "poisson_ratio": (3 * k - 2 * g) / (2 * (3 * k + g)),
        "pugh_ratio": k / g,
        "cauchy_pressure_GPa": C[0, 1] - C[3, 3],
        "cauchy_pressure_13_55_GPa": C[0, 2] - C[4, 4],
        "cauchy_pressure_23_66_GPa": C[1, 2] - C[5, 5],
        "vickers_hardness_GPa": 2 * (pugh_k**2 * g) ** 0.585 - 3,
        "sound_velocity_longitudinal_m_s": v_l, "sound_velocity_transverse_m_s": v_t,
        "sound_velocity_mean_m_s": v_m, "debye_temperature_K": theta,
        "universal_anisotropy": 5 * gv / gr + kv / kr - 6,
    }


def elastic(atoms: Atoms, calc, s: ElasticSettings = ElasticSettings()) -> dict:
    """Stiffness and moduli of ``atoms`` (relaxed) with the ASE calculator ``calc``: strains
    ``s.strains``, ions relaxed in each strained cell (``s.relax_ions``) to ``s.fmax_eV_A``
    in at most ``s.max_steps`` steps."""
    magnitudes = s.strains
    strains, stresses, eq = strained_stresses(atoms, calc, magnitudes, s.fmax_eV_A,
                                              s.max_steps, s.relax_ions)
    C = fit_stiffness(strains, stresses, eq)
    if not np.all(np.isfinite(C)):
        raise ElasticError("the MLP gave non-finite stresses in a strained cell: no "
                           "elastic constants")
    density = atoms.get_masses().sum() * constants.atomic_mass / (atoms.get_volume() * 1e-30)
    out = {"stiffness_GPa": C.round(4).tolist(),
           "stiffness_eigenvalues_GPa": np.linalg.eigvalsh(C).round(4).tolist(),
           "residual_stress_GPa": to_voigt(eq).round(5).tolist(),
           "density_g_cm3": density / 1000, "strains": list(magnitudes)}
    try:
        moduli = elastic_moduli(C, density, len(atoms) / atoms.get_volume())
    except ElasticError as exc:  # a finding, not a failure of the stage: no moduli
        return {**out, "mechanically_stable": False, "descriptors": {}, "reason": str(exc)}
    return {**out, "mechanically_stable": True,
            "descriptors": {k: float(v) for k, v in moduli.items()}}
