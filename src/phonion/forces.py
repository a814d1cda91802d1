"""Forces: evaluate every displaced supercell and store a force set.

One file format for MLP and (later) DFT forces: ``forces.h5`` with the
supercell, the displacements (Å), the forces (eV/Å) with the residual forces
of the undisplaced supercell already subtracted, those residual forces, the
energies (eV) and a JSON provenance attribute. :func:`compute_forces` loads
nothing itself: the caller passes one calculator, used for all snapshots, so a
model is loaded once per material.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from .io import atomic_path


@dataclass
class ForceSet:
    """Displacements and forces of one supercell (arrays: snapshot × atom × xyz)."""

    supercell: Atoms
    displacements_A: np.ndarray
    forces_eV_A: np.ndarray  # residual forces of the undisplaced supercell subtracted
    residual_forces_eV_A: np.ndarray
    energies_eV: np.ndarray
    meta: dict = field(default_factory=dict)

    def phonopy_dataset(self) -> dict:
        """phonopy's type-2 dataset ({'displacements', 'forces'})."""
        return {"displacements": self.displacements_A, "forces": self.forces_eV_A}


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


def write_forceset(path: str | Path, fs: ForceSet) -> None:
    """Write ``fs`` to HDF5 atomically."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        g = h5.create_group("supercell")
        g["cell_A"] = fs.supercell.cell.array
        g["numbers"] = fs.supercell.numbers
        g["positions_A"] = fs.supercell.positions
        h5["displacements_A"] = fs.displacements_A
        h5["forces_eV_A"] = fs.forces_eV_A
        h5["residual_forces_eV_A"] = fs.residual_forces_eV_A
        h5["energies_eV"] = fs.energies_eV
        h5.attrs["meta"] = json.dumps(fs.meta, default=str)


def read_forceset(path: str | Path) -> ForceSet:
    """Read a force set written by :func:`write_forceset`."""
    with h5py.File(path, "r") as h5:
        sc = Atoms(numbers=h5["supercell/numbers"][()], cell=h5["supercell/cell_A"][()],
                   positions=h5["supercell/positions_A"][()], pbc=True)
        return ForceSet(sc, h5["displacements_A"][()], h5["forces_eV_A"][()],
                        h5["residual_forces_eV_A"][()], h5["energies_eV"][()],
                        json.loads(h5.attrs.get("meta", "{}")))
