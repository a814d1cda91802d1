"""Forces: evaluate every displaced supercell (the verb :func:`compute_forces`).

The result is a :class:`~phonion.formats.ForceSet` (``forces.h5``, one format for MLP
and DFT forces): the forces have the residual forces of the undisplaced supercell
subtracted. :func:`compute_forces` loads nothing itself: the caller passes one
calculator, used for all snapshots, so a model is loaded once per material.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from .formats import ForceSet


def compute_forces(supercell: Atoms, displacements_A: np.ndarray, calculator: Calculator,
                   log=sys.stdout) -> ForceSet:
    """Forces of the undisplaced supercell and of every snapshot, residual subtracted."""
    atoms = supercell.copy()
    atoms.calc = calculator
    f0 = atoms.get_forces().copy()
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
