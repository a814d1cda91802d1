"""Result, structure, array, force-set and force-constant files, written atomically
(the package docstring of :mod:`phonion.formats` says what each holds)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ..errors import DamagedFile

#: Statuses of a stage result. ``skipped``: an earlier stage of the material did not pass.
STATUSES = ("ok", "rejected", "failed", "error", "skipped")


# --- atomic writes ----------------------------------------------------------------------

def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The temporary file is removed on any failure (a full disk included); the final file
    gets the permissions of a normal file under the process umask.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


_LOCKS: dict[str, Any] = {}


def lock_tree(folder: str | os.PathLike):
    """Hold an exclusive lock on ``folder/.phonion.lock`` for the life of this process (one
    campaign per results tree); a second process gets a one-line error naming the holder.
    Taking it again in the same process returns the lock already held."""
    import fcntl
    import socket

    folder = Path(folder)
    key = str(folder.resolve())
    if key in _LOCKS:
        return _LOCKS[key]
    folder.mkdir(parents=True, exist_ok=True)
    fh = open(folder / ".phonion.lock", "a+")  # noqa: SIM115 - held until the process ends
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise RuntimeError(
            f"results tree '{folder}' is in use by another phonion campaign ({holder}); wait "
            "for it to finish or set results to another folder") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()} on {socket.gethostname()}, cwd {os.getcwd()}\n")
    fh.flush()
    _LOCKS[key] = fh
    return fh


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (Path, set)):
        return str(obj) if isinstance(obj, Path) else sorted(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def write_json(path: str | os.PathLike, data: dict) -> None:
    """Write ``data`` as indented JSON, atomically. Non-finite numbers are refused
    (ValueError): a result never carries a NaN that a reader would take for a number."""
    text = json.dumps(data, indent=1, default=_default, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_json(path: str | os.PathLike) -> dict:
    """Read a JSON object; :class:`DamagedFile` when it is missing, truncated or not JSON."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedFile(path, f"{type(exc).__name__}: {exc}") from None
    if not isinstance(data, dict):
        raise DamagedFile(path, "not a JSON object")
    return data


# --- stage results ----------------------------------------------------------------------

def new_result(mid: str, stage: str, status: str, reason: str = "", **data) -> dict:
    """A stage result: material id, stage, status, one-line reason, then the stage's data."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    return {"material_id": mid, "stage": stage, "status": status,
            "reason": " ".join(str(reason).split()), **data}


def write_result(path: str | os.PathLike, result: dict) -> None:
    """Write a stage result atomically (see :func:`write_json`)."""
    write_json(path, result)


def read_result(path: str | os.PathLike) -> dict:
    """Read a stage result and check that it is one (material id, stage, known status)."""
    res = read_json(path)
    missing = [k for k in ("material_id", "stage", "status") if k not in res]
    if missing:
        raise DamagedFile(path, f"not a stage result (no {', '.join(missing)})")
    if res["status"] not in STATUSES:
        raise DamagedFile(path, f"unknown status {res['status']!r}")
    return res


def file_record(path: str | os.PathLike, block: int = 1 << 16) -> dict:
    """Size and a SHA-256 of the first and last ``block`` bytes of a file: recorded in the
    stage result for every file the stage wrote, so a truncated or overwritten output is
    recognised without reading it whole (see :func:`verify_record`)."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        h.update(fh.read(block))
        if size > block:
            fh.seek(max(size - block, block))
            h.update(fh.read(block))
    return {"size": size, "sha256_head_tail": h.hexdigest()}


def verify_record(path: str | os.PathLike, record: dict) -> str:
    """'' when ``path`` still matches its :func:`file_record`, else what differs."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    now = file_record(path)
    if now["size"] != record.get("size"):
        return f"size {now['size']} B, {record.get('size')} B when written"
    if now["sha256_head_tail"] != record.get("sha256_head_tail"):
        return "content changed since it was written"
    return ""


# --- structures -------------------------------------------------------------------------

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


def write_poscar(path: str | os.PathLike, atoms: Atoms | None, note: str = "") -> None:
    """A VASP POSCAR for people and other codes; a one-line comment file when there is no
    structure (the stage did not produce one: ``note`` says why)."""
    from ase.io import write

    with atomic_path(path) as tmp:
        if atoms is None:
            Path(tmp).write_text(f"# no structure: {note}\n")
        else:
            write(tmp, atoms, format="vasp", direct=True, sort=False)


# --- flat arrays (HDF5) -------------------------------------------------------------------

def write_arrays(path: str | os.PathLike, arrays: dict, status: str = "ok") -> None:
    """Write a flat {'group/name': array} dict to HDF5 atomically, with the stage status
    as an attribute (a stage that produced no arrays writes the status alone)."""
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["status"] = status
        for key, value in arrays.items():
            h5[key] = value


def read_arrays(path: str | os.PathLike) -> dict:
    """Inverse of :func:`write_arrays`."""
    import h5py

    out: dict = {}
    try:
        with h5py.File(path, "r") as h5:
            h5.visititems(lambda k, v: out.__setitem__(k, v[()])
                          if isinstance(v, h5py.Dataset) else None)
    except OSError as exc:
        raise DamagedFile(path, str(exc)) from None
    return out


# --- force sets ---------------------------------------------------------------------------

@dataclass
class ForceSet:
    """Displacements and forces of one supercell (arrays: snapshot × atom × xyz; Å, eV/Å,
    eV). ``forces_eV_A`` has the residual forces of the undisplaced supercell subtracted."""

    supercell: Atoms
    displacements_A: np.ndarray
    forces_eV_A: np.ndarray
    residual_forces_eV_A: np.ndarray
    energies_eV: np.ndarray
    meta: dict = field(default_factory=dict)


def write_forceset(path: str | os.PathLike, fs: ForceSet | None, status: str = "ok") -> None:
    """Write a force set to HDF5 atomically (``None``: a file holding only the status)."""
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["status"] = status
        if fs is None:
            return
        g = h5.create_group("supercell")
        g["cell_A"] = fs.supercell.cell.array
        g["numbers"] = fs.supercell.numbers
        g["positions_A"] = fs.supercell.positions
        h5["displacements_A"] = fs.displacements_A
        h5["forces_eV_A"] = fs.forces_eV_A
        h5["residual_forces_eV_A"] = fs.residual_forces_eV_A
        h5["energies_eV"] = fs.energies_eV
        h5.attrs["meta"] = json.dumps(fs.meta, default=str)


def read_forceset(path: str | os.PathLike) -> ForceSet:
    """Read :func:`write_forceset` output; :class:`DamagedFile` if incomplete or non-finite."""
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            sc = Atoms(numbers=h5["supercell/numbers"][()], cell=h5["supercell/cell_A"][()],
                       positions=h5["supercell/positions_A"][()], pbc=True)
            fs = ForceSet(sc, h5["displacements_A"][()], h5["forces_eV_A"][()],
                          h5["residual_forces_eV_A"][()], h5["energies_eV"][()],
                          json.loads(h5.attrs.get("meta", "{}")))
    except (OSError, KeyError) as exc:
        raise DamagedFile(path, f"no complete force set ({exc})") from None
    n = len(sc)
    if fs.forces_eV_A.shape != fs.displacements_A.shape or fs.forces_eV_A.shape[1:] != (n, 3):
        raise DamagedFile(path, "force and displacement arrays do not match the supercell")
    if not (np.isfinite(fs.forces_eV_A).all() and np.isfinite(fs.displacements_A).all()):
        raise DamagedFile(path, "non-finite forces or displacements")
    return fs


# --- force constants -----------------------------------------------------------------------

def write_fc2(path: str | os.PathLike, fc2: np.ndarray | None, status: str = "ok") -> None:
    """fc2 (eV/Å², N × N × 3 × 3) in phonopy's HDF5 format (dataset ``force_constants``);
    without force constants, a file with the stage status only."""
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["status"] = status
        if fc2 is not None:
            h5["force_constants"] = fc2


def read_fc2(path: str | os.PathLike) -> np.ndarray:
    """Read :func:`write_fc2` output (phonopy's ``read_force_constants_hdf5`` reads it too)."""
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            if "force_constants" not in h5:
                raise DamagedFile(path, f"holds no force constants (status "
                                        f"{h5.attrs.get('status', '?')})")
            fc = h5["force_constants"][()]
    except OSError as exc:
        raise DamagedFile(path, str(exc)) from None
    if fc.ndim != 4 or fc.shape[2:] != (3, 3) or not np.isfinite(fc).all():
        raise DamagedFile(path, "not finite N × N × 3 × 3 force constants")
    return fc


def write_fc3(path: str | os.PathLike, fc3: np.ndarray | None, status: str = "ok") -> None:
    """fc3 (eV/Å³, N × N × N × 3 × 3 × 3) in phono3py's HDF5 format (dataset ``fc3``)."""
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["status"] = status
        if fc3 is not None:
            h5["fc3"] = fc3




