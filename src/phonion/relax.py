"""Relax: positions and cell with an MLP (ASE optimizers and cell filters).

The verb is :func:`relax`; :func:`verdict` turns its result into the stage
status. A relaxation that did not converge or that changed the space group is
*reported* (status ``failed``) and not used downstream, never silently kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.constraints import FixSymmetry
from ase.filters import ExpCellFilter, FrechetCellFilter
from ase.optimize import BFGS, FIRE, LBFGS

from .errors import ConfigError
from .settings import RelaxSettings
from .symmetry import spacegroup

OPTIMIZERS = {"FIRE": FIRE, "BFGS": BFGS, "LBFGS": LBFGS}
CELL_FILTERS = {"frechet": FrechetCellFilter, "exp": ExpCellFilter, "none": None}
EV_A3_TO_GPA = 1.0 / units.GPa


@dataclass
class RelaxResult:
    """Outcome of :func:`relax`. Energies in eV, forces eV/Å, stress GPa, volume Å³."""

    atoms: Atoms
    converged: bool
    n_steps: int
    energy_eV: float
    max_force_eV_A: float
    max_stress_GPa: float
    volume_initial_A3: float
    volume_final_A3: float
    spacegroup_initial: tuple[str, int]
    spacegroup_final: tuple[str, int]

    def summary(self) -> dict:
        """JSON-ready scalars (units in the key names)."""
        n = len(self.atoms)
        return {
            "converged": self.converged,
            "n_steps": self.n_steps,
            "energy_eV": self.energy_eV,
            "energy_per_atom_eV": self.energy_eV / n,
            "max_force_eV_A": self.max_force_eV_A,
            "max_stress_GPa": self.max_stress_GPa,
            "volume_initial_A3": self.volume_initial_A3,
            "volume_final_A3": self.volume_final_A3,
            "volume_change_percent": 100 * (self.volume_final_A3 / self.volume_initial_A3 - 1),
            "spacegroup_initial": self.spacegroup_initial[0],
            "spacegroup_number_initial": self.spacegroup_initial[1],
            "spacegroup_final": self.spacegroup_final[0],
            "spacegroup_number_final": self.spacegroup_final[1],
        }


def relax(atoms: Atoms, calculator: Calculator, s: RelaxSettings = RelaxSettings(),
          logfile: str | None = "-") -> RelaxResult:
    """Relax positions (and the cell unless ``s.cell_filter='none'``) to ``s.fmax_eV_A``.

    ``fmax_eV_A`` applies to atomic forces and, through the cell filter, to the
    stress (ASE filters express it as a generalised force). ``fix_symmetry``
    constrains the relaxation to the initial space group (ASE ``FixSymmetry``).
    """
    fmax_eV_A, max_steps, optimizer, cell_filter = (s.fmax_eV_A, s.max_steps, s.optimizer,
                                                    s.cell_filter)
    fix_symmetry, symprec = s.fix_symmetry, s.symprec
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"relax.optimizer '{optimizer}' unknown; use {', '.join(OPTIMIZERS)}")
    if cell_filter not in CELL_FILTERS:
        raise ConfigError(f"relax.cell_filter '{cell_filter}' unknown; use "
                          f"{', '.join(CELL_FILTERS)}")
    atoms = atoms.copy()
    atoms.calc = calculator
    sg0 = spacegroup(atoms, symprec)
    v0 = atoms.get_volume()
    if fix_symmetry:
        atoms.set_constraint(FixSymmetry(atoms, symprec=symprec))
    filt = CELL_FILTERS[cell_filter]
    target = filt(atoms) if filt else atoms
    opt = OPTIMIZERS[optimizer](target, logfile=logfile)
    converged = bool(opt.run(fmax=fmax_eV_A, steps=max_steps))
    forces = atoms.get_forces()
    stress = atoms.get_stress(voigt=True) * EV_A3_TO_GPA if filt else np.zeros(6)
    energy = float(atoms.get_potential_energy())
    atoms.set_constraint()
    final = Atoms(atoms.get_chemical_symbols(), cell=atoms.cell.array,
                  scaled_positions=atoms.get_scaled_positions(), pbc=True)
    return RelaxResult(
        atoms=final,
        converged=converged,
        n_steps=int(opt.nsteps),
        energy_eV=energy,
        max_force_eV_A=float(np.linalg.norm(forces, axis=1).max()),
        max_stress_GPa=float(np.abs(stress).max()),
        volume_initial_A3=float(v0),
        volume_final_A3=float(final.get_volume()),
        spacegroup_initial=sg0,
        spacegroup_final=spacegroup(final, symprec),
    )


def verdict(result: RelaxResult, s: RelaxSettings = RelaxSettings()) -> tuple[str, str]:
    """Stage status (``ok`` or ``failed``) and one-line reason for a relaxation."""
    fmax_eV_A, max_steps, on_symmetry_change = s.fmax_eV_A, s.max_steps, s.on_symmetry_change
    if not result.converged:
        return "failed", (
            f"relaxation not converged in {max_steps} steps (max force "
            f"{result.max_force_eV_A:.3g} eV/Å > {fmax_eV_A} eV/Å); raise relax.max_steps "
            "or check the structure"
        )
    if result.spacegroup_initial[1] != result.spacegroup_final[1]:
        reason = (
            f"space group changed on relaxation: {result.spacegroup_initial[0]} "
            f"({result.spacegroup_initial[1]}) -> {result.spacegroup_final[0]} "
            f"({result.spacegroup_final[1]})"
        )
        if on_symmetry_change == "fail":
            return "failed", reason + "; set relax.on_symmetry_change: warn to accept it"
        return "ok", reason
    return "ok", ""
