"""Forces: evaluate every displaced supercell (the verb :func:`compute_forces`).

The result is a :class:`~phonion.formats.ForceSet` (``forces.h5``, one format for MLP
and DFT forces): the forces have the residual forces of the undisplaced supercell
subtracted (or, when the site symmetry of every atom forbids a force, ``reference=False``,
taken as zero without an evaluation). :func:`compute_forces` loads nothing itself: the
caller passes one calculator, used for all snapshots, so a model is loaded once per
material.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from .formats import ForceSet


def _residual(atoms: Atoms, reference: bool) -> np.ndarray:
    """Forces (eV/Å) of the undisplaced supercell, or zeros when symmetry forbids them."""
    return atoms.get_forces().copy() if reference else np.zeros((len(atoms), 3))


def compute_forces(supercell: Atoms, displacements_A: np.ndarray, calculator: Calculator,
                   log=sys.stdout, reference: bool = True) -> ForceSet:
    """Forces of the undisplaced supercell (unless ``reference`` is False: zero by
    symmetry) and of every snapshot, residual subtracted."""
    atoms = supercell.copy()
    atoms.calc = calculator
    f0 = _residual(atoms, reference)
    forces, energies = [], []
    base = supercell.positions.copy()
    t0 = time.perf_counter()
    for k, disp in enumerate(displacements_A, start=1):
        atoms.positions = base + disp
        forces.append(atoms.get_forces().copy())
        energies.append(atoms.get_potential_energy())
        if log:
            print(f"[forces] snapshot {k}/{len(displacements_A)} "
                  f"({time.perf_counter() - t0:.1f} s)", file=log, flush=True)
    return ForceSet(supercell.copy(), np.asarray(displacements_A, float),
                    np.asarray(forces) - f0, f0, np.asarray(energies))


def compute_forces_adaptive(supercell: Atoms, displacements_A: np.ndarray,
                            calculator: Calculator, start: int, batch: int, check,
                            tolerance: float, log=sys.stdout, reference: bool = True
                            ) -> tuple[ForceSet, list[dict]]:
    """Forces on the first ``start`` snapshots, then ``batch`` more at a time until the
    value of ``check(displacements, forces)`` (the mobile-ion MSD of a least-squares fc2, or
    None while the fit is not determined) changes by less than ``tolerance`` (relative)
    between batches, or the listed snapshots run out. Returns the force set of the
    snapshots evaluated and the history (snapshots, value, change)."""
    atoms = supercell.copy()
    atoms.calc = calculator
    f0 = _residual(atoms, reference)
    base = supercell.positions.copy()
    forces, energies, history = [], [], []
    previous = None
    n = start
    while True:
        for disp in displacements_A[len(forces):n]:
            atoms.positions = base + disp
            forces.append(atoms.get_forces().copy() - f0)
            energies.append(atoms.get_potential_energy())
        value = check(displacements_A[:n], np.asarray(forces))
        change = None if value is None or previous is None else abs(value / previous - 1)
        history.append({"n_snapshots": n, "value": value, "relative_change": change})
        if log:
            print(f"[forces] adaptive: {n} snapshots, MSD {value}, change {change}",
                  file=log, flush=True)
        if (change is not None and change < tolerance) or n >= len(displacements_A):
            break
        previous = value if value is not None else previous
        n = min(n + batch, len(displacements_A))
    fs = ForceSet(supercell.copy(), np.asarray(displacements_A[:n], float), np.asarray(forces),
                  f0, np.asarray(energies))
    return fs, history


def reference_needed(displace_result: dict) -> bool:
    """Whether the undisplaced supercell must be evaluated: not when the site symmetry of
    every atom forbids a force on it (``displace`` decides; rock salt, fluorite)."""
    return not displace_result.get("residual_forces_zero_by_symmetry", False)


def msd_criterion(displace_result: dict, s, basis_cache=None):
    """The adaptive-snapshot criterion of :func:`compute_forces_adaptive`: a function of
    (displacements, forces) giving the mobile-ion MSD (Å²) at ``s.temperature_K`` on a
    20 Å mesh from a symfc least-squares fc2 of the snapshots so far (None while the fit is
    not determined). ``s``: the forces stage's settings. Needs phonopy and symfc."""
    from .displace import free_parameters, symfc_basis
    from .fit_ifc import fit_symfc, independent_equations
    from .formats import atoms_from_dict
    from .harmonic import mesh_numbers, phonopy_from_displace
    from .lsq import DesignError
    from .phonon_descriptors import mesh_msd

    ph = phonopy_from_displace(displace_result)
    basis = symfc_basis(atoms_from_dict(displace_result["supercell"]), (2,), s.fc2_cutoff_A,
                        cache=basis_cache)
    n_free = free_parameters(basis)[2]  # the basis is built once for every batch's fit
    mobile = np.array(ph.primitive.symbols) == s.mobile_ion
    mesh = mesh_numbers(ph, 20.0)

    def check(displacements, forces):
        if independent_equations(displacements) < n_free:
            return None
        try:
            ph.force_constants = fit_symfc(ph, displacements, forces, s.fc2_cutoff_A,
                                           basis=basis)
        except DesignError:  # not determined yet: the next batch may be
            return None
        return float(mesh_msd(ph, mesh, [s.temperature_K])[0][mobile].mean())

    return check

