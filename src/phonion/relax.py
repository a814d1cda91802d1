"""Relax: positions and cell with an MLP (ASE optimizers and cell filters).

The verb is :func:`relax`; :func:`verdict` turns its result into the stage status. A
relaxation that did not converge, or that lost symmetry, is *reported* (status ``failed``,
the unmet criterion named with its value and threshold) and not used downstream, never
silently kept; one that found a *more* symmetric minimum (a supergroup of the input's
space group) goes on with the more symmetric cell and the change recorded.

Convergence follows ASE's cell filters: the optimizer stops when every atomic force and
every row of the filter's cell "force" V·σ/N is below ``fmax_eV_A``, i.e. the stress rows
below fmax·N/V (eV/Å³). A run that stops at ``max_steps`` leaves its last structure, so a
rerun with a larger ``max_steps`` continues from it (:func:`relax` ``start``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.constraints import FixSymmetry
from ase.filters import ExpCellFilter, FrechetCellFilter
from ase.optimize import BFGS, FIRE, LBFGS

from .errors import ConfigError
from .settings import RelaxSettings
from .symmetry import is_supergroup, spacegroup, symmetry_operations

OPTIMIZERS = {"FIRE": FIRE, "BFGS": BFGS, "LBFGS": LBFGS, "PreconLBFGS": None,
              "PreconFIRE": None}
CELL_FILTERS = {"frechet": FrechetCellFilter, "exp": ExpCellFilter, "none": None}
EV_A3_TO_GPA = 1.0 / units.GPa


@dataclass
class RelaxResult:
    """Outcome of :func:`relax`. Energies in eV, forces eV/Å, stress GPa (and eV/Å³),
    volume Å³; ``stress_threshold_eV_A3`` is what the cell filter's fmax means for the
    stress (fmax·N/V)."""

    atoms: Atoms
    converged: bool
    n_steps: int
    energy_eV: float
    max_force_eV_A: float
    max_stress_GPa: float
    stress_row_max_eV_A3: float
    stress_threshold_eV_A3: float | None
    last_energy_change_eV: float | None
    volume_initial_A3: float
    volume_final_A3: float
    spacegroup_initial: tuple[str, int]
    spacegroup_final: tuple[str, int]
    supergroup: bool = False  # the final symmetry contains every operation of the initial
    n_steps_before: int = 0  # steps of earlier runs this one continued
    stages: list = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-ready scalars (units in the key names)."""
        n = len(self.atoms)
        return {
            "converged": self.converged,
            "n_steps": self.n_steps,
            "n_steps_before_resume": self.n_steps_before,
            "energy_eV": self.energy_eV,
            "energy_per_atom_eV": self.energy_eV / n,
            "max_force_eV_A": self.max_force_eV_A,
            "max_stress_GPa": self.max_stress_GPa,
            "stress_row_max_eV_A3": self.stress_row_max_eV_A3,
            "stress_threshold_eV_A3": self.stress_threshold_eV_A3,
            "last_energy_change_eV": self.last_energy_change_eV,
            "volume_initial_A3": self.volume_initial_A3,
            "volume_final_A3": self.volume_final_A3,
            "volume_change_percent": 100 * (self.volume_final_A3 / self.volume_initial_A3 - 1),
            "spacegroup_initial": self.spacegroup_initial[0],
            "spacegroup_number_initial": self.spacegroup_initial[1],
            "spacegroup_final": self.spacegroup_final[0],
            "spacegroup_number_final": self.spacegroup_final[1],
            "symmetry_change": symmetry_change(self.spacegroup_initial, self.spacegroup_final,
                                               self.supergroup),
            "stages": self.stages,
        }


class _EnergyTrace:
    """Optimizer observer: the last two energies (eV), for the last energy change."""

    def __init__(self, atoms: Atoms):
        self.atoms, self.energies = atoms, []

    def __call__(self) -> None:
        self.energies = [*self.energies[-1:], float(self.atoms.get_potential_energy())]

    @property
    def change(self) -> float | None:
        return abs(self.energies[1] - self.energies[0]) if len(self.energies) == 2 else None


def _optimize(atoms: Atoms, s: RelaxSettings, variable_cell: bool, steps: int,
              logfile, trace: _EnergyTrace) -> tuple[bool, int]:
    """One optimizer run; returns (converged, steps taken)."""
    if s.optimizer.startswith("Precon"):
        from ase.optimize.precon import Exp, PreconFIRE, PreconLBFGS

        cls = PreconLBFGS if s.optimizer == "PreconLBFGS" else PreconFIRE
        opt = cls(atoms, precon=Exp(), variable_cell=variable_cell, logfile=logfile)
        # ASE's preconditioned optimizers compare the raw stress (eV/Å³) with smax, which
        # defaults to fmax: 0.005 eV/Å³ = 0.8 GPa, twenty times looser than the cell
        # filters' fmax·N/V. Give them the cell filters' threshold, so that "converged"
        # means the same for every optimizer.
        kwargs = {"smax": s.fmax_eV_A * len(atoms) / atoms.get_volume()}
    else:
        filt = CELL_FILTERS[s.cell_filter] if variable_cell else None
        opt = OPTIMIZERS[s.optimizer](filt(atoms) if filt else atoms, logfile=logfile)
        kwargs = {}
    opt.attach(trace)
    converged = bool(opt.run(fmax=s.fmax_eV_A, steps=steps, **kwargs))
    return converged, int(opt.nsteps)


def relax(atoms: Atoms, calculator: Calculator, s: RelaxSettings = RelaxSettings(),
          logfile: str | None = "-", start: Atoms | None = None,
          steps_before: int = 0) -> RelaxResult:
    """Relax positions (and the cell unless ``s.cell_filter='none'``) to ``s.fmax_eV_A``.

    ``fmax_eV_A`` applies to atomic forces and, through the cell filter, to the stress
    (ASE filters express it as a generalised force V·σ/N). ``fix_symmetry`` constrains the
    relaxation to the initial space group (ASE ``FixSymmetry``); ``two_stage`` relaxes the
    positions in the fixed cell first. ``start`` (with ``steps_before`` steps already done)
    continues an earlier run that stopped at its step limit: the symmetry before is still
    that of ``atoms``.
    """
    if s.optimizer not in OPTIMIZERS:
        raise ConfigError(f"relax.optimizer '{s.optimizer}' unknown; use "
                          f"{', '.join(OPTIMIZERS)}")
    if s.cell_filter not in CELL_FILTERS:
        raise ConfigError(f"relax.cell_filter '{s.cell_filter}' unknown; use "
                          f"{', '.join(CELL_FILTERS)}")
    sg0, ops0 = spacegroup(atoms, s.symprec), symmetry_operations(atoms, s.symprec)
    v0 = atoms.get_volume()
    atoms = (start if start is not None else atoms).copy()
    atoms.calc = calculator
    if s.fix_symmetry:
        atoms.set_constraint(FixSymmetry(atoms, symprec=s.symprec))
    variable_cell = s.cell_filter != "none"
    trace = _EnergyTrace(atoms)
    budget = max(s.max_steps - steps_before, 0)
    stages, converged, used = [], False, 0
    plan = ([False, True] if s.two_stage and variable_cell else [variable_cell])
    for cell in plan:
        ok, n = _optimize(atoms, s, cell, budget - used, logfile, trace)
        used += n
        stages.append({"variable_cell": cell, "steps": n, "converged": ok})
        converged = ok
        if not ok:
            break
    forces = atoms.get_forces()
    stress = atoms.get_stress(voigt=False) if variable_cell else np.zeros((3, 3))
    energy = float(atoms.get_potential_energy())
    atoms.set_constraint()
    final = Atoms(atoms.get_chemical_symbols(), cell=atoms.cell.array,
                  scaled_positions=atoms.get_scaled_positions(), pbc=True)
    sg1 = spacegroup(final, s.symprec)
    return RelaxResult(
        atoms=final,
        converged=converged,
        n_steps=steps_before + used,
        energy_eV=energy,
        max_force_eV_A=float(np.linalg.norm(forces, axis=1).max()),
        max_stress_GPa=float(np.abs(stress).max() * EV_A3_TO_GPA),
        stress_row_max_eV_A3=float(np.linalg.norm(stress, axis=1).max()),
        stress_threshold_eV_A3=(s.fmax_eV_A * len(final) / final.get_volume()
                                if variable_cell else None),
        last_energy_change_eV=trace.change,
        volume_initial_A3=float(v0),
        volume_final_A3=float(final.get_volume()),
        spacegroup_initial=sg0,
        spacegroup_final=sg1,
        supergroup=sg1[1] != sg0[1] and is_supergroup(final, ops0, s.symprec),
        n_steps_before=steps_before,
        stages=stages,
    )


def unmet_criteria(r: RelaxResult, s: RelaxSettings) -> str:
    """The convergence criteria a relaxation did not meet, each with its value and
    threshold in the same units, and the last energy change."""
    parts = []
    if r.max_force_eV_A > s.fmax_eV_A:
        parts.append(f"max atomic force {r.max_force_eV_A:.3g} eV/Å > relax.fmax_eV_A = "
                     f"{s.fmax_eV_A} eV/Å")
    else:
        parts.append(f"atomic forces converged ({r.max_force_eV_A:.3g} eV/Å)")
    if r.stress_threshold_eV_A3 is not None:
        t_gpa = r.stress_threshold_eV_A3 * EV_A3_TO_GPA
        if r.stress_row_max_eV_A3 > r.stress_threshold_eV_A3:
            parts.append(f"cell stress {r.stress_row_max_eV_A3 * EV_A3_TO_GPA:.3g} GPa "
                         f"({r.stress_row_max_eV_A3:.3g} eV/Å³) > the cell filter's "
                         f"{t_gpa:.3g} GPa ({r.stress_threshold_eV_A3:.3g} eV/Å³ = fmax·N/V)")
        else:
            parts.append(f"cell stress converged ({r.max_stress_GPa:.3g} GPa)")
    if r.last_energy_change_eV is not None:
        parts.append(f"last energy change {r.last_energy_change_eV:.2g} eV")
    return "; ".join(parts)


def verdict(result: RelaxResult, s: RelaxSettings = RelaxSettings()) -> tuple[str, str]:
    """Stage status (``ok`` or ``failed``) and one-line reason for a relaxation.

    Not converged: ``failed``, naming the unmet criterion. A space group that changed to a
    supergroup of the input's (the MLP minimum is more symmetric) is kept with the change
    in the reason; one that lost operations is governed by ``on_symmetry_change``.
    """
    if not result.converged:
        return "failed", (
            f"relaxation not converged in {s.max_steps} steps: {unmet_criteria(result, s)}; "
            "raise relax.max_steps (the rerun continues from the last structure) or check "
            "the structure")
    return symmetry_verdict(result.spacegroup_initial, result.spacegroup_final,
                            result.supergroup, s.on_symmetry_change)


def symmetry_verdict(g0: tuple[str, int], g1: tuple[str, int], supergroup: bool,
                     on_symmetry_change: str = "fail") -> tuple[str, str]:
    """Status and reason of a converged relaxation from its space groups before (``g0``)
    and after (``g1``), for every relax engine: a supergroup is kept, a loss of operations
    follows ``relax.on_symmetry_change``."""
    if g0[1] == g1[1]:
        return "ok", ""
    change = f"space group {g0[0]} ({g0[1]}) -> {g1[0]} ({g1[1]})"
    if supergroup:
        return "ok", f"{change}: the relaxed cell is more symmetric (a supergroup); kept"
    if on_symmetry_change == "fail":
        return "failed", (f"{change}: symmetry lost on relaxation; set "
                          "relax.on_symmetry_change: warn to accept it")
    return "ok", f"{change}: symmetry lost on relaxation, accepted (on_symmetry_change: warn)"


def symmetry_change(g0: tuple[str, int], g1: tuple[str, int], supergroup: bool) -> str:
    """``none``, ``supergroup`` (the final cell keeps every operation of the initial one
    and gains some) or ``lost``, from the space groups before and after."""
    return "none" if g0[1] == g1[1] else "supergroup" if supergroup else "lost"


def compare_symmetry(initial: Atoms, final: Atoms, symprec: float
                     ) -> tuple[tuple[str, int], tuple[str, int], bool]:
    """Space groups (symbol, number) before and after a relaxation by any engine, and
    whether the final one is a supergroup of the initial one."""
    g0, g1 = spacegroup(initial, symprec), spacegroup(final, symprec)
    superg = g1[1] != g0[1] and is_supergroup(final, symmetry_operations(initial, symprec),
                                              symprec)
    return g0, g1, superg


def restart_key(structure: dict, s: RelaxSettings) -> str:
    """What a saved unfinished relaxation must match to be continued: the input structure
    and every setting except ``max_steps`` (raising it continues the run)."""
    import dataclasses
    import hashlib
    import json

    text = json.dumps(structure, sort_keys=True) + dataclasses.replace(s, max_steps=0).to_json()
    return hashlib.sha256(text.encode()).hexdigest()
