"""Readers of CP2K's outputs: the position, velocity and energy files of MD runs into
phonion's trajectory layout, one run or the segments of a continued AIMD run
(:mod:`phonion.dft.cp2k` re-exports the verbs)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import units

from ..errors import InputRejected
from .common import stitch, trajectory_record

#: The input phonion writes, the output CP2K writes, and CP2K's PROJECT name.
INPUT = "cp2k.inp"
OUTPUT = "cp2k.out"
PROJECT = "phonion"
#: Written with every input: task, atoms, cell and MD parameters of the run.
META_FILE = "phonion_cp2k.json"
#: Bohr per atomic time unit → Å/ps (atomic time unit ħ/E_h = ase.units._aut seconds).
VELOCITY_AU_A_PS = units.Bohr / (units._aut * 1e12)
HARTREE_EV = units.Hartree


def _meta_of(directory: Path) -> dict:
    p = directory / META_FILE
    if not p.is_file():
        raise InputRejected(directory, f"no {META_FILE}: not a run phonion wrote")
    return json.loads(p.read_text())


@dataclass
class XyzFrames:
    """Complete frames of a CP2K MD xyz file (positions Å or velocities a.u.)."""

    symbols: list[str]
    xyz: np.ndarray  # frames × atoms × 3
    steps: np.ndarray  # MD step of each frame ('i =' of the comment line)
    times_fs: np.ndarray
    truncated: bool


_FRAME = re.compile(r"i\s*=\s*(\d+)(?:,\s*time\s*=\s*([-\d.Ee+]+))?")


def _xyz_frames(path: Path) -> XyzFrames:
    """Every complete frame of a CP2K xyz trajectory; a frame cut by a kill (missing
    lines, a last line without newline) is left out and ``truncated`` set."""
    text = path.read_text(errors="replace")
    lines = text.split("\n")
    truncated = bool(lines and lines[-1].strip())
    if truncated:
        lines = lines[:-1]
    symbols: list[str] | None = None
    frames, steps, times = [], [], []
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            n = int(lines[i].split()[0])
        except ValueError:
            raise InputRejected(path, f"no atom count at line {i + 1}") from None
        m = _FRAME.search(lines[i + 1]) if i + 1 < len(lines) else None
        block = lines[i + 2:i + 2 + n]
        if m is None or len(block) < n:
            truncated = True
            break
        try:
            sym = [ln.split()[0] for ln in block]
            xyz = np.array([[float(v) for v in ln.split()[1:4]] for ln in block])
        except (ValueError, IndexError):
            truncated = True
            break
        if xyz.shape != (n, 3):
            truncated = True
            break
        if symbols is None:
            symbols = sym
        elif sym != symbols:
            raise InputRejected(path, f"the atoms change at step {m.group(1)}")
        frames.append(xyz)
        steps.append(int(m.group(1)))
        times.append(float(m.group(2)) if m.group(2) else np.nan)  # GEO_OPT: no time
        i += 2 + n
    if symbols is None:
        return XyzFrames([], np.zeros((0, 0, 3)), np.zeros(0, int), np.zeros(0), truncated)
    return XyzFrames(symbols, np.array(frames), np.array(steps), np.array(times), truncated)


def _ener(directory: Path) -> dict[int, tuple[float, float]]:
    """MD step → (temperature K, potential energy eV) from ``phonion-1.ener``."""
    p = directory / f"{PROJECT}-1.ener"
    out = {}
    if p.is_file():
        for line in p.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) < 7 or line.lstrip().startswith("#"):
                continue
            try:
                out[int(parts[0])] = (float(parts[3]), float(parts[4]) * HARTREE_EV)
            except ValueError:
                continue
    return out


def _segment_frames(directory: Path):
    """(symbols, steps, positions Å, velocities Å/ps, temperatures K, energies eV, forces
    eV/Å or None) of the frames a segment holds both positions and velocities of; forces
    (``phonion-frc-1.xyz``, printed since they became training data and the committee's
    reference) only when the segment printed them for every such frame."""
    pos = _xyz_frames(directory / f"{PROJECT}-pos-1.xyz")
    vel = _xyz_frames(directory / f"{PROJECT}-vel-1.xyz")
    if not len(pos.steps):
        raise InputRejected(directory, f"no complete frame in {PROJECT}-pos-1.xyz")
    common = np.intersect1d(pos.steps, vel.steps)
    frc_path = directory / f"{PROJECT}-frc-1.xyz"
    forces = None
    if frc_path.is_file():
        frc = _xyz_frames(frc_path)
        if np.isin(common, frc.steps).all():
            forces = frc.xyz[np.searchsorted(frc.steps, common)]
    ip = np.searchsorted(pos.steps, common)
    iv = np.searchsorted(vel.steps, common)
    ener = _ener(directory)
    temps = np.array([ener.get(int(k), (np.nan, np.nan))[0] for k in common])
    epot = np.array([ener.get(int(k), (np.nan, np.nan))[1] for k in common])
    return (pos.symbols, common, pos.xyz[ip], vel.xyz[iv] * VELOCITY_AU_A_PS, temps, epot,
            forces)


def _trajectory(symbols, cell, steps, pos_A, vel_A_ps, temps, epot, dt_fs, target,
                forces=None) -> dict:
    """CP2K frames (Cartesian positions, velocities, per-frame temperature and energy, and
    forces when printed) as a trajectory; the frame interval is the smallest step
    difference."""
    cell = np.asarray(cell, float)
    frac = np.linalg.solve(cell.T, pos_A.reshape(-1, 3).T).T.reshape(pos_A.shape)
    steps = np.asarray(steps, int)
    interval = int(np.min(np.diff(steps))) if len(steps) > 1 else 1
    out = trajectory_record(symbols, cell, frac, steps, float(dt_fs), interval, target,
                            velocities_A_ps=vel_A_ps, temperatures_K=temps,
                            energies_eV=epot if np.isfinite(epot).all() else None)
    if forces is not None:
        out["forces_eV_A"] = np.asarray(forces, float)
    return out


def read_trajectory(directory: str | os.PathLike, temperature_K: float | None = None) -> dict:
    """The AIMD trajectory of one run directory in the layout of
    :func:`phonion.formats.read_trajectory`: complete frames holding both positions
    (``phonion-pos-1.xyz``, Å, unwrapped with :func:`phonion.geometry.unwrap`) and
    velocities (``phonion-vel-1.xyz``, Bohr/a.u. of time → Å/ps), the instantaneous
    temperature and potential energy per frame from ``phonion-1.ener``, ``frame_dt_ps``
    from the time step. A run that did not finish is read as far as it got (use
    :func:`check` first to refuse it)."""
    d = Path(directory)
    meta = _meta_of(d)
    symbols, steps, pos, vel, temps, epot, forces = _segment_frames(d)
    target = temperature_K if temperature_K is not None else meta.get("temperature_K")
    return _trajectory(symbols, meta["cell_A"], steps, pos, vel, temps, epot,
                       meta["timestep_fs"], target, forces)


def concatenate_segments(directories: list[str | os.PathLike],
                         temperature_K: float | None = None) -> dict:
    """One trajectory from the segments of an AIMD run (in order), in the layout of
    :func:`read_trajectory`: each segment's frames at their (global) CP2K step numbers; a
    segment's frames at or after the next segment's first frame are replaced by the next
    segment's (it recomputed them). Refused when a step is missing or the atoms differ."""
    segs = [(Path(d), _segment_frames(Path(d))) for d in directories]
    meta = _meta_of(segs[0][0])
    symbols = segs[0][1][0]
    for d, (sym, *_) in segs:
        if sym != symbols:
            raise InputRejected(d, "other atoms than the first segment")
    keep = stitch(directories, [f[1] for _, f in segs], 1)
    steps, pos, vel, temps, epot = (
        np.concatenate([f[i][m] for (_, f), m in zip(segs, keep, strict=True)])
        for i in range(1, 6))
    # forces only when every segment printed them (segments before they were printed: none)
    forces = (np.concatenate([f[6][m] for (_, f), m in zip(segs, keep, strict=True)])
              if all(f[6] is not None for _, f in segs) else None)
    target = temperature_K if temperature_K is not None else meta.get("temperature_K")
    out = _trajectory(symbols, meta["cell_A"], steps, pos, vel, temps, epot,
                      meta["timestep_fs"], target, forces)
    out["segments"] = [os.fspath(d) for d, _ in segs]
    return out
