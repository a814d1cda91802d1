"""MD trajectories: ``trajectory.h5``, written incrementally with its own checkpoint
(:class:`TrajectoryWriter`), read back validated (:func:`read_trajectory`), and any
trajectory ASE or phonion's DFT readers understand (:func:`read_any_trajectory`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from ase import Atoms

from ..errors import DamagedFile
from .files import atomic_path

#: Per-frame datasets of a trajectory, in the order of :meth:`TrajectoryWriter.commit`.
FRAME_DATASETS = ("positions_A", "velocities_A_ps", "potential_energy_eV", "temperature_K",
                  "step")


#: The first model's forces on every frame (eV/Å, float32): free to keep (the integrator
#: has just computed them) and what a second model is compared with on MD configurations
#: (:mod:`phonion.md_committee`). Optional: trajectories written before it have none.
FORCES_DATASET = "forces_eV_A"

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
        for name, shape, dt in (("positions_A", (n, 3), "f8"), ("velocities_A_ps", (n, 3), "f8"),
                                (FORCES_DATASET, (n, 3), "f4")):
            h.create_dataset(name, (0, *shape), maxshape=(None, *shape), dtype=dt,
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
        if FORCES_DATASET in self.h5 and len(self.h5[FORCES_DATASET]) > n:
            self.h5[FORCES_DATASET].resize(n, axis=0)
        return (self.committed_step, self.h5["state/positions_A"][()],
                self.h5["state/momenta_ase"][()],
                str(self.h5.attrs.get("state/thermostat", "")))

    def commit(self, step: int, positions_A: np.ndarray, momenta_ase: np.ndarray,
               thermostat_state: str, frame: tuple | None,
               forces_eV_A: np.ndarray | None = None) -> None:
        """Save the state after ``step`` (and a frame, in :data:`FRAME_DATASETS` order, with
        its forces where the file keeps them: one started before they were kept does not)."""
        h = self.h5
        if frame is not None:
            n = int(h.attrs["n_frames"])
            for name, value in zip(FRAME_DATASETS, frame, strict=True):
                h[name].resize(n + 1, axis=0)
                h[name][n] = value
            if forces_eV_A is not None and FORCES_DATASET in h and len(h[FORCES_DATASET]) == n:
                h[FORCES_DATASET].resize(n + 1, axis=0)
                h[FORCES_DATASET][n] = forces_eV_A
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


def read_frames_with_forces(path: str | os.PathLike, n_frames: int) -> dict:
    """``n_frames`` frames spread evenly over a trajectory (first and last included), with
    the forces the MD computed on them: positions (Å), forces (eV/Å), frame indices, cell,
    numbers, target temperature; ``forces_eV_A`` is None when the file keeps no forces for
    every frame (written before they were kept). :class:`DamagedFile` when the file is
    unreadable."""
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            n = int(h5.attrs["n_frames"])
            idx = np.unique(np.linspace(0, n - 1, min(n_frames, n)).round().astype(int))
            kept = FORCES_DATASET in h5 and len(h5[FORCES_DATASET]) >= n
            out = {"frames": idx, "positions_A": h5["positions_A"][idx],
                   "forces_eV_A": h5[FORCES_DATASET][idx].astype(float) if kept else None,
                   "potential_energy_eV": h5["potential_energy_eV"][idx].astype(float),
                   "cell_A": h5.attrs["cell_A"], "numbers": h5.attrs["numbers"],
                   "target_temperature_K": float(h5.attrs["target_temperature_K"]),
                   "n_frames": n}
    except (OSError, KeyError, ValueError) as exc:
        raise DamagedFile(path, f"no readable trajectory ({type(exc).__name__}: {exc})") from None
    if n == 0:
        raise DamagedFile(path, "no frames")
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

    from ..errors import InputRejected
    from ..geometry import unwrap

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
        if traj.get("forces_eV_A") is not None:  # the DFT forces of an AIMD, every frame
            h5.create_dataset(FORCES_DATASET, data=np.asarray(traj["forces_eV_A"], "f4"))
        h5.create_dataset("state/positions_A", data=pos[-1])
        h5.create_dataset("state/momenta_ase", data=np.zeros_like(pos[-1]))
        h5.attrs["state/thermostat"] = ""
        h5.attrs["n_frames"] = n
        h5.attrs["committed_step"] = int(frames["step"][-1])
