"""File I/O shared by all stages: atomic writes and structure (de)serialisation.

Stages return plain data; only the CLI layer writes files, always through
:func:`write_json_atomic` / :func:`atomic_path` so that a killed job never
leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def write_json_atomic(path: str | os.PathLike, data: dict) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, default=_default, allow_nan=True) + "\n")


def read_json(path: str | os.PathLike) -> dict:
    """Read a JSON file written by :func:`write_json_atomic`."""
    return json.loads(Path(path).read_text())


def symbols_of(numbers) -> np.ndarray:
    """Chemical symbols of atomic numbers, as an array (for masks like ``symbols == 'Na'``)."""
    from ase.data import chemical_symbols

    return np.array([chemical_symbols[int(z)] for z in numbers])


def atoms_to_dict(atoms: Atoms) -> dict:
    """Plain-data form of a periodic structure (Å, fractional coordinates)."""
    return {
        "symbols": atoms.get_chemical_symbols(),
        "cell_A": atoms.cell.array.tolist(),
        "frac_positions": atoms.get_scaled_positions(wrap=False).tolist(),
        "pbc": [bool(p) for p in atoms.pbc],
    }


def atoms_from_dict(data: dict) -> Atoms:
    """Inverse of :func:`atoms_to_dict`."""
    return Atoms(
        symbols=data["symbols"],
        cell=np.asarray(data["cell_A"], dtype=float),
        scaled_positions=np.asarray(data["frac_positions"], dtype=float),
        pbc=data.get("pbc", True),
    )
