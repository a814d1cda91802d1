"""Space-group and primitive-cell helpers (spglib), and the periodic width of a cell."""

from __future__ import annotations

import numpy as np
import spglib
from ase import Atoms

try:  # spglib >= 2.5: raise SpglibError instead of returning None
    import spglib.error

    spglib.error.OLD_ERROR_HANDLING = False
    _SpglibError: type[Exception] = spglib.error.SpglibError
except (ImportError, AttributeError):  # older spglib returns None on failure
    _SpglibError = RuntimeError


def _cell(atoms: Atoms) -> tuple:
    return (atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers)


def spacegroup(atoms: Atoms, symprec: float = 1e-3) -> tuple[str, int]:
    """International symbol and number of the space group at tolerance ``symprec`` (Å)."""
    try:
        data = spglib.get_symmetry_dataset(_cell(atoms), symprec=symprec)
    except _SpglibError:
        data = None
    if data is None:
        return ("P1", 1)
    return (str(data.international), int(data.number))


def primitive(atoms: Atoms, symprec: float = 1e-3) -> Atoms:
    """Standardised primitive cell (spglib); the input is returned if spglib fails."""
    try:
        result = spglib.standardize_cell(_cell(atoms), to_primitive=True, no_idealize=False,
                                         symprec=symprec)
    except _SpglibError:
        result = None
    if result is None:
        return atoms.copy()
    lattice, frac, numbers = result
    prim = Atoms(numbers=numbers, cell=lattice, scaled_positions=np.mod(frac, 1.0), pbc=True)
    return prim


def inscribed_diameter_A(cell: np.ndarray) -> float:
    """Smallest distance between opposite faces of a cell (Å): the periodic-image length."""
    volume = abs(np.linalg.det(cell))
    return float(min(volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3]))
                     for i in range(3)))
