"""Every file phonion writes or reads, in one place.

- stage results: JSON, one per stage and material (:func:`write_result`, :func:`read_result`);
- structures: plain-data dicts inside results (:func:`atoms_to_dict`) and VASP POSCAR files
  (:func:`write_poscar`);
- force sets: ``forces.h5`` (:class:`ForceSet`, the same layout for MLP and DFT forces);
- force constants: phonopy's fc2 HDF5 and phono3py's fc3 HDF5 (:func:`write_fc2`, …);
- MD trajectories: ``trajectory.h5``, written incrementally with its own checkpoint
  (:class:`TrajectoryWriter`, :func:`read_trajectory`);
- arrays of a stage for its figures and the campaign: flat HDF5 (:func:`write_arrays`).

Writes are atomic (a temporary file renamed onto the target, so a killed job never
leaves a file that looks complete) and follow the process umask. Reads validate what
they return (readable, complete, finite) and raise :class:`~phonion.errors.DamagedFile`
naming the file otherwise. Only numpy, h5py and ASE are imported here: backend
environments read and write these files too.
"""

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

from .errors import DamagedFile

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


# --- MD trajectories -------------------------------------------------------------------------

#: Per-frame datasets of a trajectory, in the order of :meth:`TrajectoryWriter.commit`.
FRAME_DATASETS = ("positions_A", "velocities_A_ps", "potential_energy_eV", "temperature_K",
                  "step")
#: Attributes every reader gets.
TRAJECTORY_ATTRS = ("numbers", "masses_amu", "cell_A", "dt_fs", "interval", "frame_dt_ps",
                    "target_temperature_K", "committed_step")


class TrajectoryWriter:
    """``trajectory.h5`` written as MD runs: frames (unwrapped positions Å, velocities Å/ps,
    potential energy eV, temperature K, step), the state to resume from (positions,
    momenta, the thermostat's random state and variables) and the commit marker
    ``committed_step``, written last and flushed with every frame.

    Opening an existing file with the same ``fingerprint`` keeps its committed frames;
    any other file (other settings, another structure, a damaged or unreadable file, a
    run longer than ``total_steps``) is started over.
    """

    def __init__(self, path: str | os.PathLike, atoms: Atoms, fingerprint: str,
                 meta: dict, total_steps: int):
        import h5py

        self.path = Path(path)
        self.h5 = None
        if self.path.exists():
            try:
                h5 = h5py.File(self.path, "a")
                keep = (h5.attrs.get("fingerprint") == fingerprint
                        and 0 <= int(h5.attrs.get("committed_step", -1)) <= total_steps
                        and all(name in h5 for name in FRAME_DATASETS)
                        and int(h5.attrs["n_frames"]) <= len(h5["step"]))
                if keep:
                    self.h5 = h5
                else:
                    h5.close()
            except (OSError, KeyError, ValueError):  # damaged: start over
                pass
        if self.h5 is None:
            self._create(atoms, fingerprint, meta)

    def _create(self, atoms: Atoms, fingerprint: str, meta: dict) -> None:
        import h5py

        self.path.unlink(missing_ok=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        h = self.h5 = h5py.File(self.path, "w")
        n = len(atoms)
        h.attrs["fingerprint"] = fingerprint
        h.attrs["numbers"] = atoms.numbers
        h.attrs["masses_amu"] = atoms.get_masses()
        h.attrs["cell_A"] = atoms.cell.array
        for key, value in meta.items():
            h.attrs[key] = value
        for name, shape in (("positions_A", (n, 3)), ("velocities_A_ps", (n, 3))):
            h.create_dataset(name, (0, *shape), maxshape=(None, *shape), dtype="f8",
                             chunks=(max(1, 4096 // n), *shape))
        for name, dt in (("potential_energy_eV", "f8"), ("temperature_K", "f8"),
                         ("step", "i8")):
            h.create_dataset(name, (0,), maxshape=(None,), dtype=dt, chunks=(1024,))
        h.create_dataset("state/positions_A", data=atoms.positions)
        h.create_dataset("state/momenta_ase", data=np.zeros((n, 3)))
        h.attrs["state/thermostat"] = ""
        h.attrs["n_frames"] = 0
        h.attrs["committed_step"] = -1  # nothing committed: start from scratch
        h.flush()

    @property
    def committed_step(self) -> int:
        return int(self.h5.attrs["committed_step"])

    def attr(self, name: str, default=None):
        return self.h5.attrs.get(name, default)

    def set_attr(self, name: str, value) -> None:
        self.h5.attrs[name] = value

    def restore(self) -> tuple[int, np.ndarray, np.ndarray, str]:
        """Truncate to the committed frames; return (committed step, positions Å,
        momenta in ASE units (stored as they were, so a restart is exact), the
        thermostat's state as JSON, '' when none was saved)."""
        n = int(self.h5.attrs["n_frames"])
        for name in FRAME_DATASETS:
            self.h5[name].resize(n, axis=0)
        return (self.committed_step, self.h5["state/positions_A"][()],
                self.h5["state/momenta_ase"][()],
                str(self.h5.attrs.get("state/thermostat", "")))

    def commit(self, step: int, positions_A: np.ndarray, momenta_ase: np.ndarray,
               thermostat_state: str, frame: tuple | None) -> None:
        """Save the state after ``step`` (and a frame, in :data:`FRAME_DATASETS` order)."""
        h = self.h5
        if frame is not None:
            n = int(h.attrs["n_frames"])
            for name, value in zip(FRAME_DATASETS, frame, strict=True):
                h[name].resize(n + 1, axis=0)
                h[name][n] = value
        h["state/positions_A"][...] = positions_A
        h["state/momenta_ase"][...] = momenta_ase
        h.attrs["state/thermostat"] = thermostat_state
        if frame is not None:
            h.attrs["n_frames"] = int(h.attrs["n_frames"]) + 1
        h.attrs["committed_step"] = step
        h.flush()

    def close(self) -> None:
        if self.h5 is not None:
            self.h5.close()
            self.h5 = None


def read_trajectory(path: str | os.PathLike) -> dict:
    """Frames and metadata of a trajectory (Å, Å/ps, eV, K); :class:`DamagedFile` when the
    file is unreadable, incomplete or holds non-finite positions or velocities."""
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            n = int(h5.attrs["n_frames"])
            out = {k: h5[k][:n] for k in FRAME_DATASETS}
            out.update({k: h5.attrs[k] for k in TRAJECTORY_ATTRS})
    except (OSError, KeyError, ValueError) as exc:
        raise DamagedFile(path, f"no complete trajectory ({type(exc).__name__}: {exc})") from None
    if len(out["positions_A"]) != n or len(out["step"]) != n:
        raise DamagedFile(path, f"{len(out['step'])} frames stored, {n} committed")
    if not (np.isfinite(out["positions_A"]).all() and np.isfinite(out["velocities_A_ps"]).all()):
        raise DamagedFile(path, "non-finite positions or velocities")
    return out


def read_any_trajectory(path: str | os.PathLike, frame_dt_ps: float | None = None,
                        fmt: str | None = None, temperature_K: float | None = None) -> dict:
    """Any trajectory that ASE reads (VASP XDATCAR, extxyz, ASE .traj, LAMMPS dump, …;
    gzip is fine) in the layout of :func:`read_trajectory`.

    Positions are unwrapped from the fractional coordinates (no atom may cross half a cell
    between frames; phonion's own HDF5 is stored unwrapped). The time between frames is
    ``frame_dt_ps``, or read from the frames' ``time_ps`` / ``time_fs`` info keys. Velocities
    come from the file when every frame has them, otherwise from central differences of the
    positions (then the VDOS is only meaningful well below the Nyquist frequency
    1/(2 frame_dt_ps)). :class:`~phonion.errors.InputRejected` says what is missing (the file is
    never removed: it is the user's).
    """
    from ase import units
    from ase.io import read

    from .errors import InputRejected
    from .geometry import unwrap

    try:
        frames = read(str(path), index=":", format=fmt)
    except Exception as exc:  # noqa: BLE001 - ASE raises anything for a file it cannot parse
        raise InputRejected(path, f"ASE cannot read it as a trajectory ({type(exc).__name__}: "
                          f"{exc})") from None
    if len(frames) < 2:
        raise InputRejected(path, f"{len(frames)} frame(s): a trajectory needs at least 2")
    if len({len(f) for f in frames}) != 1 or any(
            (f.numbers != frames[0].numbers).any() for f in frames):
        raise InputRejected(path, "the atoms change between frames")
    if frame_dt_ps is None:
        info = frames[1].info, frames[0].info
        if all("time_ps" in i for i in info):
            frame_dt_ps = float(info[0]["time_ps"] - info[1]["time_ps"])
        elif all("time_fs" in i for i in info):
            frame_dt_ps = float(info[0]["time_fs"] - info[1]["time_fs"]) / 1000
        else:
            raise InputRejected(path, "no time between frames in the file: give it "
                              "(--frame-dt-ps)")
    if not frame_dt_ps > 0:
        raise InputRejected(path, f"time between frames {frame_dt_ps} ps is not positive")
    cell = frames[0].cell.array
    frac = np.array([f.cell.scaled_positions(f.positions) for f in frames])
    pos = unwrap(frac, cell)
    if not np.isfinite(pos).all():
        raise InputRejected(path, "non-finite positions")
    try:
        vel = np.array([f.get_velocities() for f in frames]) * units.fs * 1000  # Å/ps
        derived = not np.abs(vel).sum() > 0
    except (TypeError, ValueError):
        derived = True
    if derived:
        vel = np.gradient(pos, frame_dt_ps, axis=0)
    masses = frames[0].get_masses()
    out = {"positions_A": pos, "velocities_A_ps": vel, "numbers": frames[0].numbers,
           "masses_amu": masses, "cell_A": cell, "frame_dt_ps": float(frame_dt_ps),
           "target_temperature_K": temperature_K, "velocities_from_positions": derived}
    if not derived:  # instantaneous kinetic temperature, 3N degrees of freedom
        ke = 0.5 * np.einsum("a,tai->t", masses, vel**2) * 1.0364269e-4  # amu Å²/ps² → eV
        out["temperature_K"] = 2 * ke / (3 * len(masses) * units.kB)
    elif temperature_K is not None:
        out["temperature_K"] = np.full(len(frames), float(temperature_K))
    return out


def write_trajectory(path: str | os.PathLike, traj: dict) -> None:
    """A whole trajectory (the :func:`read_trajectory` layout, e.g. AIMD joined from its
    segments) into ``trajectory.h5`` atomically, in the layout :class:`TrajectoryWriter`
    writes, so every reader of MLP trajectories reads it unchanged."""
    import h5py

    pos = np.asarray(traj["positions_A"], float)
    n = len(pos)
    frames = {"positions_A": pos,
              "velocities_A_ps": np.asarray(traj["velocities_A_ps"], float),
              "potential_energy_eV": np.asarray(traj.get("potential_energy_eV",
                                                         np.full(n, np.nan)), float),
              "temperature_K": np.asarray(traj.get("temperature_K", np.full(n, np.nan)),
                                          float),
              "step": np.asarray(traj["step"], "i8")}
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["fingerprint"] = "external"
        for key in TRAJECTORY_ATTRS:
            if key != "committed_step":
                h5.attrs[key] = traj[key]
        for name, data in frames.items():
            h5.create_dataset(name, data=data)
        h5.create_dataset("state/positions_A", data=pos[-1])
        h5.create_dataset("state/momenta_ase", data=np.zeros_like(pos[-1]))
        h5.attrs["state/thermostat"] = ""
        h5.attrs["n_frames"] = n
        h5.attrs["committed_step"] = int(frames["step"][-1])
