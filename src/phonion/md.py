"""MD: NVT molecular dynamics with the MLP, written incrementally to HDF5, resumable.

The verb is :func:`run_md`. Frames (unwrapped positions Å, velocities Å/ps, potential
energy eV, temperature K, step) go to ``trajectory.h5`` every ``interval`` production
steps. The file carries its own checkpoint: the state (positions, velocities, step) is
saved with every frame and every ``interval`` equilibration steps, and the attribute
``committed_step`` is written last and flushed. A rerun after SIGTERM, SIGKILL or a wall-time
limit truncates the datasets to the committed frames, restores the state and continues to
exactly the requested step count: no duplicated or missing frames. SIGTERM/SIGINT are
caught and end the run cleanly at the next step boundary.

Divergence (non-finite forces, a force above ``max_force_eV_A``, a temperature above
``max_temperature_factor`` × target, two atoms closer than ``min_distance_A``) stops the run
with a reason (:class:`Diverged`).
"""

from __future__ import annotations

import hashlib
import json
import signal
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import h5py
import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.constraints import FixCom
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.neighborlist import neighbor_list

from .errors import PhonionError

V_ASE_TO_A_PS = units.fs * 1000.0  # ASE velocity unit -> Å/ps


class Diverged(PhonionError):
    """The MD run blew up; the message says how and at which step."""


class Interrupted(PhonionError):
    """SIGTERM/SIGINT arrived; the trajectory is consistent up to the committed step."""


@dataclass
class MDSettings:
    temperature_K: float = 800.0
    timestep_fs: float = 1.5
    equilibration_steps: int = 10_000
    production_steps: int = 40_000
    interval: int = 4
    thermostat: str = "langevin"  # langevin | bussi | nose_hoover_chain
    friction_per_fs: float = 0.01  # Langevin
    tau_fs: float = 100.0  # Bussi / Nosé–Hoover damping time
    seed: int = 0
    max_force_eV_A: float = 50.0
    max_temperature_factor: float = 5.0
    min_distance_A: float = 0.5
    initial_state: str = "harmonic"  # harmonic (from fc2, when given) | maxwell_boltzmann


def _thermostat(atoms: Atoms, s: MDSettings, step: int):
    dt = s.timestep_fs * units.fs
    rng = np.random.default_rng([s.seed, step])  # deterministic, fresh after a resume
    if s.thermostat == "langevin":
        from ase.md.langevin import Langevin

        atoms.set_constraint(FixCom())  # no centre-of-mass drift
        return Langevin(atoms, dt, temperature_K=s.temperature_K,
                        friction=s.friction_per_fs / units.fs, rng=rng, fixcm=False)
    if s.thermostat == "bussi":
        from ase.md.bussi import Bussi

        return Bussi(atoms, dt, temperature_K=s.temperature_K, taut=s.tau_fs * units.fs,
                     rng=rng)
    if s.thermostat == "nose_hoover_chain":
        from ase.md.nose_hoover_chain import NoseHooverChainNVT

        return NoseHooverChainNVT(atoms, dt, temperature_K=s.temperature_K,
                                  tdamp=s.tau_fs * units.fs)
    raise PhonionError(f"md.thermostat '{s.thermostat}' unknown; use langevin, bussi or "
                       "nose_hoover_chain")


def _fingerprint(s: MDSettings, atoms: Atoms) -> str:
    """Settings and starting structure that define the run, except its length: a longer
    ``production_steps`` extends an existing trajectory instead of restarting it, a changed
    structure (relaxed again, another supercell) starts over."""
    d = asdict(s)
    d.pop("production_steps")
    h = hashlib.sha256()
    for arr in (atoms.numbers, np.round(atoms.cell.array, 6), np.round(atoms.positions, 6)):
        h.update(np.ascontiguousarray(arr).tobytes())
    d["structure_sha256"] = h.hexdigest()
    return json.dumps(d, sort_keys=True)


def committed_production_steps(path: str | Path, settings: MDSettings, atoms: Atoms) -> int:
    """Production steps already committed in ``path`` by a run with these settings (0 if
    there is no such file or it was made with other settings)."""
    path = Path(path)
    if not path.exists():
        return 0
    try:
        with h5py.File(path, "r") as h5:
            if h5.attrs.get("settings") != _fingerprint(settings, atoms):
                return 0
            step = int(h5.attrs.get("committed_step", -1))
    except OSError:  # a file killed before its first flush
        return 0
    return max(step - settings.equilibration_steps, 0)


class _Trajectory:
    """The HDF5 file: frames, the state checkpoint and the commit marker."""

    def __init__(self, path: Path, atoms: Atoms, s: MDSettings):
        self.path = path
        new = not path.exists()
        self.h5 = h5py.File(path, "a")
        n = len(atoms)
        fingerprint = _fingerprint(s, atoms)
        stale = self.h5.attrs.get("settings") != fingerprint  # other or unknown settings
        total = s.equilibration_steps + s.production_steps
        beyond = int(self.h5.attrs.get("committed_step", -1)) > total  # asked for a shorter run
        if new or stale or beyond or "committed_step" not in self.h5.attrs:  # restart
            for key in list(self.h5.keys()):
                del self.h5[key]
            h = self.h5
            h.attrs["settings"] = fingerprint
            h.attrs["numbers"] = atoms.numbers
            h.attrs["masses_amu"] = atoms.get_masses()
            h.attrs["cell_A"] = atoms.cell.array
            h.attrs["dt_fs"] = s.timestep_fs
            h.attrs["interval"] = s.interval
            h.attrs["frame_dt_ps"] = s.timestep_fs * s.interval / 1000.0
            h.attrs["target_temperature_K"] = s.temperature_K
            h.attrs["equilibration_steps"] = s.equilibration_steps
            h.attrs["thermostat"] = s.thermostat
            for name, shape in (("positions_A", (n, 3)), ("velocities_A_ps", (n, 3))):
                h.create_dataset(name, (0, *shape), maxshape=(None, *shape), dtype="f8",
                                 chunks=(max(1, 4096 // n), *shape))
            for name, dt in (("potential_energy_eV", "f8"), ("temperature_K", "f8"),
                             ("step", "i8")):
                h.create_dataset(name, (0,), maxshape=(None,), dtype=dt, chunks=(1024,))
            h.create_dataset("state/positions_A", data=atoms.positions)
            h.create_dataset("state/velocities_A_ps",
                             data=atoms.get_velocities() * V_ASE_TO_A_PS)
            h.attrs["n_frames"] = 0
            h.attrs["committed_step"] = -1  # nothing committed: start from scratch
            h.flush()

    @property
    def committed_step(self) -> int:
        return int(self.h5.attrs["committed_step"])

    def restore(self, atoms: Atoms) -> int:
        """Truncate to the committed frames, restore the state; return the steps done."""
        n = int(self.h5.attrs["n_frames"])
        for name in ("positions_A", "velocities_A_ps", "potential_energy_eV", "temperature_K",
                     "step"):
            self.h5[name].resize(n, axis=0)
        atoms.positions = self.h5["state/positions_A"][()]
        atoms.set_velocities(self.h5["state/velocities_A_ps"][()] / V_ASE_TO_A_PS)
        return self.committed_step

    def commit(self, atoms: Atoms, step: int, frame: tuple | None) -> None:
        h = self.h5
        if frame is not None:
            n = int(h.attrs["n_frames"])
            for name, value in zip(("positions_A", "velocities_A_ps", "potential_energy_eV",
                                    "temperature_K", "step"), frame, strict=True):
                h[name].resize(n + 1, axis=0)
                h[name][n] = value
        h["state/positions_A"][...] = atoms.positions
        h["state/velocities_A_ps"][...] = atoms.get_velocities() * V_ASE_TO_A_PS
        if frame is not None:
            h.attrs["n_frames"] = int(h.attrs["n_frames"]) + 1
        h.attrs["committed_step"] = step
        h.flush()

    def close(self) -> None:
        self.h5.close()


def initial_state(atoms: Atoms, s: MDSettings, force_constants: np.ndarray | None) -> str:
    """Set the starting velocities (and, for ``harmonic``, displacements) at s.temperature_K.

    ``harmonic``: every phonon mode of the supercell's force constants (N × N × 3 × 3, eV/Å²)
    excited with classical amplitudes and random phases (West and Estreicher, PRL 96, 115504
    (2006); ASE's ``phonon_harmonics``), so kinetic and potential energy both start in
    equilibrium and the equilibration only has to remove anharmonic transients. A starting
    state with only Maxwell–Boltzmann velocities on the relaxed structure puts all the energy
    in kinetic form: the temperature falls to about half the target within a vibrational
    period and the thermostat needs several of its time constants to bring it back. Falls
    back to Maxwell–Boltzmann (and says so) without force constants or when they have
    negative or non-translational zero eigenvalues. Returns the state used.
    """
    rng = np.random.default_rng(s.seed)
    if s.initial_state == "harmonic" and force_constants is not None:
        from ase.md.velocitydistribution import phonon_harmonics

        n = len(atoms)
        fc = np.asarray(force_constants).transpose(0, 2, 1, 3).reshape(3 * n, 3 * n)
        try:
            d, v = phonon_harmonics(0.5 * (fc + fc.T), atoms.get_masses(),
                                    temperature_K=s.temperature_K, rng=rng.random,
                                    failfast=True)
        except ValueError as exc:
            print(f"[md] harmonic initial state impossible ({exc}); Maxwell-Boltzmann instead",
                  flush=True)
        else:
            atoms.positions += d
            atoms.set_velocities(v)
            return "harmonic"
    MaxwellBoltzmannDistribution(atoms, temperature_K=s.temperature_K, rng=rng)
    Stationary(atoms)
    return "maxwell_boltzmann"


def run_md(atoms: Atoms, calculator: Calculator, settings: MDSettings, path: str | Path,
           log=sys.stdout, progress_every_s: float = 30.0,
           force_constants: np.ndarray | None = None) -> dict:
    """Run (or resume) NVT MD to ``equilibration + production`` steps; return a summary.

    A frame is written after every ``interval`` production steps (at completed step
    counts equilibration + k·interval, k = 1 … production/interval), so a finished run
    holds exactly ``production_steps // interval`` frames; ``step`` stores that count.
    """
    s = settings
    path = Path(path)
    atoms = atoms.copy()
    atoms.calc = calculator
    traj = _Trajectory(path, atoms, s)
    total = s.equilibration_steps + s.production_steps
    if traj.committed_step >= 0:
        start = traj.restore(atoms)
        resumed_from = start if start < total else None
        started_from = traj.h5.attrs.get("initial_state", "unknown")
    else:
        started_from = initial_state(atoms, s, force_constants)
        traj.h5.attrs["initial_state"] = started_from
        start, resumed_from = 0, None
    stop = {"signal": None}

    def handler(signum, _frame):
        stop["signal"] = signum

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    t0 = time.perf_counter()
    last_report = t0
    n_steps_done = 0
    try:
        dyn = _thermostat(atoms, s, start)
        done = start  # steps completed
        while done < total:
            if stop["signal"] is not None:
                raise Interrupted(f"signal {stop['signal']} after step {done}; committed "
                                  f"step {traj.committed_step}; rerun to resume")
            n = min(s.interval - done % s.interval, total - done)
            dyn.run(n)  # a block of steps with no per-step Python work of ours
            done += n
            n_steps_done += n
            forces = atoms.get_forces()  # cached: the thermostat's last evaluation
            epot = atoms.get_potential_energy()
            temp = atoms.get_temperature()
            _check(atoms, forces, temp, done, s)
            frame = None
            if done > s.equilibration_steps and done % s.interval == 0:
                frame = (atoms.positions.copy(), atoms.get_velocities() * V_ASE_TO_A_PS,
                         epot, temp, done)
            traj.commit(atoms, done, frame)
            now = time.perf_counter()
            if log and now - last_report > progress_every_s:
                rate = n_steps_done / (now - t0)
                print(f"[md] step {done}/{total} T = {temp:.0f} K, {rate:.2f} steps/s, "
                      f"ETA {(total - done) / rate / 60:.1f} min", file=log, flush=True)
                last_report = now
        wall = time.perf_counter() - t0
        n_frames = int(traj.h5.attrs["n_frames"])
    finally:
        traj.close()
        for sig, h in old.items():
            signal.signal(sig, h)
    return {"n_steps": total, "n_frames": n_frames, "steps_this_run": n_steps_done,
            "initial_state": str(started_from),
            "resumed_from_step": resumed_from, "wall_time_s": wall,
            "steps_per_s": n_steps_done / wall if wall > 0 else None}


def run_adaptive(atoms: Atoms, calculator: Calculator, settings: MDSettings,
                 path: str | Path, converged, chunk_steps: int, max_production_steps: int,
                 log=sys.stdout, force_constants: np.ndarray | None = None) -> dict:
    """Run MD, then extend production in chunks until ``converged(path)`` says so or
    ``max_production_steps`` is reached (beyond the seeds; md.adaptive in config).

    ``converged`` takes the trajectory path and returns (done, info): for the workflow,
    whether the relative standard error of D_avg is below the target. A killed run resumes
    in the chunk it was in: the production length restarts from the committed steps
    rounded up to the chunk grid, so the sequence of lengths is the same as without the
    kill. Returns :func:`run_md`'s summary of the last chunk with ``production_steps``,
    ``converged``, the per-chunk ``adaptive`` history and totals over all chunks.
    """
    base = settings.production_steps
    done = committed_production_steps(path, settings, atoms)
    prod = base
    if done > base:
        prod = min(base + -(-(done - base) // chunk_steps) * chunk_steps, max_production_steps)
        prod = max(prod, done)
    history, steps, wall = [], 0, 0.0
    while True:
        s = replace(settings, production_steps=prod)
        summary = run_md(atoms, calculator, s, path, log, force_constants=force_constants)
        steps += summary["steps_this_run"]
        wall += summary["wall_time_s"]
        ok, info = converged(path)
        history.append({"production_steps": prod, **info})
        if log:
            print(f"[md] adaptive: {prod} production steps, {info}"
                  + ("" if ok else "; not converged"), file=log, flush=True)
        if ok or prod >= max_production_steps:
            break
        prod = min(prod + chunk_steps, max_production_steps)
    summary.update(production_steps=prod, converged=bool(ok), adaptive=history,
                   steps_this_run=steps, wall_time_s=wall,
                   steps_per_s=steps / wall if wall > 0 else None)
    return summary


def _check(atoms: Atoms, forces: np.ndarray, temp: float, step: int, s: MDSettings) -> None:
    if not np.all(np.isfinite(forces)) or not np.all(np.isfinite(atoms.positions)):
        raise Diverged(f"non-finite forces or positions at step {step}")
    fmax = float(np.linalg.norm(forces, axis=1).max())
    if fmax > s.max_force_eV_A:
        raise Diverged(f"force {fmax:.1f} eV/Å > md.max_force_eV_A at step {step}")
    if temp > s.max_temperature_factor * s.temperature_K:
        raise Diverged(f"temperature {temp:.0f} K > {s.max_temperature_factor:g} × target at "
                       f"step {step}")
    d = neighbor_list("d", atoms, s.min_distance_A)
    if len(d):
        raise Diverged(f"two atoms {d.min():.2f} Å apart (< md.min_distance_A) at step {step}")


def read_trajectory(path: str | Path) -> dict:
    """Frames and metadata of a trajectory file (arrays in Å, Å/ps, eV, K)."""
    with h5py.File(path, "r") as h5:
        n = int(h5.attrs["n_frames"])
        out = {k: h5[k][:n] for k in ("positions_A", "velocities_A_ps", "potential_energy_eV",
                                      "temperature_K", "step")}
        out.update({k: h5.attrs[k] for k in ("numbers", "masses_amu", "cell_A", "dt_fs",
                                             "interval", "frame_dt_ps",
                                             "target_temperature_K", "committed_step")})
    return out
