"""What the DFT engines share: the failure type, run commands, error lines, and the
trajectory layout and segment stitching of AIMD runs (one place, not one per engine)."""

from __future__ import annotations

import os
import shlex

import numpy as np

from ..errors import ConfigError, InputRejected, PhonionError
from ..geometry import unwrap


class DFTRunFailed(PhonionError):
    """A DFT run failed, did not converge or is incomplete; the message says which and
    why (the stage runner turns it into ``failed``)."""

    def __init__(self, directory: str | os.PathLike, why: str):
        self.directory = os.fspath(directory)
        self.why = why
        super().__init__(f"DFT run in {self.directory}: {why}")


def s_one_line(exc: BaseException) -> str:
    """An exception as one short line: its type and its first 300 characters."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def command_argv(command: str | list[str] | tuple[str, ...]) -> list[str]:
    """A run command as an argument list: a string is split like a shell splits words
    (quotes respected), but no shell ever runs it, so nothing in it is expanded or executed
    beyond the program it names."""
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    if not argv:
        raise ConfigError("empty DFT run command; set dft.<engine>.command")
    return argv


def trajectory_record(symbols, cell, frac: np.ndarray, steps, dt_fs: float, interval: int,
                      target_K: float | None, velocities_A_ps: np.ndarray | None = None,
                      temperatures_K: np.ndarray | None = None,
                      energies_eV: np.ndarray | None = None) -> dict:
    """An AIMD trajectory in the layout of :func:`phonion.formats.read_trajectory`:
    positions unwrapped from the fractional ``frac`` (frames, atoms, 3) in ``cell`` (Å),
    frames every ``interval`` steps of ``dt_fs``. Without ``velocities_A_ps`` (VASP's
    XDATCAR holds none) velocities are central differences of the positions; per-frame
    temperatures and energies enter when every frame has one."""
    from ase.data import atomic_masses, atomic_numbers

    cell = np.asarray(cell, float)
    frame_dt_ps = float(dt_fs) * int(interval) / 1000.0
    if not frame_dt_ps > 0:
        raise ConfigError(f"time between frames {frame_dt_ps} ps ({dt_fs} fs × {interval} "
                          "steps) is not positive")
    numbers = np.array([atomic_numbers[s] for s in symbols])
    pos = unwrap(frac, cell)
    from_positions = velocities_A_ps is None
    if from_positions:
        vel = np.gradient(pos, frame_dt_ps, axis=0) if len(pos) > 1 else np.zeros_like(pos)
    else:
        vel = np.asarray(velocities_A_ps)
    steps = np.asarray(steps, int)
    out = {"positions_A": pos, "velocities_A_ps": vel, "numbers": numbers,
           "masses_amu": atomic_masses[numbers], "cell_A": cell, "dt_fs": float(dt_fs),
           "interval": int(interval), "frame_dt_ps": frame_dt_ps, "step": steps,
           "committed_step": int(steps[-1]), "target_temperature_K": target_K,
           "velocities_from_positions": from_positions}
    if temperatures_K is not None and np.isfinite(temperatures_K).all():
        out["temperature_K"] = np.asarray(temperatures_K, float)
    if energies_eV is not None:
        out["potential_energy_eV"] = np.asarray(energies_eV, float)
    return out


def stitch(directories: list, steps: list[np.ndarray], stride: int) -> list[np.ndarray]:
    """Which frames of each AIMD segment to keep: those before the next segment's first
    frame (the next segment recomputed them). Refused (:class:`InputRejected`) when the
    kept global ``steps`` leave a gap or overlap (consecutive frames not ``stride`` apart)."""
    keep = [np.ones(len(s), bool) for s in steps]
    for k in range(len(steps) - 1):
        keep[k] = steps[k] < steps[k + 1][0]
    kept = np.concatenate([s[m] for s, m in zip(steps, keep, strict=True)])
    gaps = np.flatnonzero(np.diff(kept) != stride)
    if len(gaps):
        i = gaps[0]
        raise InputRejected(directories[0], f"segments leave a gap or overlap between steps "
                            f"{kept[i]} and {kept[i + 1]}")
    return keep
