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


def symmetry_operations(atoms: Atoms, symprec: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Space-group operations (rotations, translations) of ``atoms`` in fractional
    coordinates of its own cell (spglib); the identity alone if spglib fails."""
    try:
        data = spglib.get_symmetry(_cell(atoms), symprec=symprec)
    except _SpglibError:
        data = None
    if data is None:
        return np.eye(3, dtype=int)[None], np.zeros((1, 3))
    return np.asarray(data["rotations"]), np.asarray(data["translations"])


def keeps_operations(atoms: Atoms, operations: tuple[np.ndarray, np.ndarray],
                     symprec: float = 1e-3) -> bool:
    """Whether every operation (in fractional coordinates of this cell) maps ``atoms`` onto
    itself within ``symprec`` (Å): after a relaxation in the same cell basis, True means the
    final space group contains the initial one (a supergroup, or the same group)."""
    frac = atoms.get_scaled_positions()
    numbers = atoms.numbers
    cell = atoms.cell.array
    for rot, trans in zip(*operations, strict=True):
        moved = frac @ rot.T + trans
        d = moved[:, None, :] - frac[None, :, :]
        d -= np.rint(d)
        dist = np.linalg.norm(d @ cell, axis=2)
        dist[numbers[:, None] != numbers[None, :]] = np.inf
        if not (dist.min(axis=1) < symprec).all():
            return False
    return True


def is_supergroup(final: Atoms, operations: tuple[np.ndarray, np.ndarray],
                  symprec: float = 1e-3) -> bool:
    """Whether the space group of ``final`` (spglib at ``symprec``, Å) is a proper supergroup
    of the group whose ``operations`` (fractional, same cell basis) it started with: it has
    more operations *and* keeps every initial one. Both are needed: spglib's search and the
    per-operation check disagree near the tolerance (tetragonal Na3PS4 relaxed with
    SevenNet-MF-0: P-42_1c -> P2_12_12 with spglib at 0.01 Å, yet every P-42_1c operation
    maps the atoms within 0.005 Å), and a group with fewer operations is a loss."""
    return (len(symmetry_operations(final, symprec)[0]) > len(operations[0])
            and keeps_operations(final, operations, symprec))


def symmetrize(atoms: Atoms, symprec: float = 1e-3) -> tuple[Atoms, float]:
    """A copy of ``atoms`` with cell and positions made exactly symmetric for the space group
    found at ``symprec`` (Å), orientation kept (ASE ``refine_symmetry``, built on spglib),
    and the largest atom shift (Å). Why: a relaxed cell is symmetric only to the
    optimizer's tolerance, and symfc's symmetry-adapted basis can then break — measured on
    SevenNet-0-relaxed NaYS2 (R-3m; lattice and positions off by < 1e-6 Å): the
    least-squares fc2 reproduced the forces of a spring network built on that very cell to
    43 % instead of 0.7 % (0.68 % after this). spglib failing leaves the atoms as they are
    (shift 0)."""
    from ase.spacegroup.symmetrize import refine_symmetry

    out = atoms.copy()
    out.set_constraint()
    try:
        refine_symmetry(out, symprec=symprec, verbose=False)
    except (_SpglibError, RuntimeError, ValueError, TypeError):
        return atoms.copy(), 0.0
    d = out.get_scaled_positions(wrap=False) - atoms.get_scaled_positions(wrap=False)
    d -= np.rint(d)
    shift = float(np.linalg.norm(d @ out.cell.array, axis=1).max()) if len(out) else 0.0
    out.set_scaled_positions(out.get_scaled_positions(wrap=True))
    return out, shift


def forces_vanish_by_symmetry(atoms: Atoms, symprec: float = 1e-3) -> bool:
    """Whether the site symmetry of every atom forbids a force on it.

    A force on atom i is a vector left invariant by every operation {R|t} that maps the
    atom onto itself; the mean of those R projects onto the invariant vectors, so when it
    is zero for every atom (e.g. every site of rock salt or fluorite is centrosymmetric)
    the forces of the undisplaced, exactly symmetric cell are zero by symmetry and need
    no evaluation. Hand-written because spglib gives the site-symmetry symbols but not
    their invariant subspaces."""
    rotations, translations = symmetry_operations(atoms, symprec)
    frac = atoms.get_scaled_positions()
    cell = atoms.cell.array
    for x in frac:
        moved = x @ np.transpose(rotations, (0, 2, 1)) + translations  # (n_ops, 3)
        d = moved - x
        d -= np.rint(d)
        stabiliser = np.linalg.norm(d @ cell, axis=1) < symprec
        if np.abs(rotations[stabiliser].mean(axis=0)).max() > 1e-9:
            return False
    return True
