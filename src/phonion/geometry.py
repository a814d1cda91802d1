"""Small geometry helpers shared by the trajectory readers and the analyses (a foundation
module: it imports nothing from phonion, so every other module may import it)."""

from __future__ import annotations

import numpy as np


def unwrap(frac: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Unwrapped Cartesian positions (Å) from wrapped fractional ones (frames, atoms, 3),
    assuming no atom moves more than half a cell between frames."""
    d = np.diff(frac, axis=0)
    d -= np.rint(d)
    unwrapped = np.concatenate([frac[:1], frac[:1] + np.cumsum(d, axis=0)])
    return unwrapped @ np.asarray(cell)


def symbols_of(numbers) -> np.ndarray:
    """Chemical symbols of atomic numbers, as an array (for masks like ``symbols == 'Na'``)."""
    from ase.data import chemical_symbols

    return np.array([chemical_symbols[int(z)] for z in numbers])
