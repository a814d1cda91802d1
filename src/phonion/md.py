"""MD: NVT molecular dynamics with the MLP, written incrementally to HDF5, resumable.

The verb is :func:`run_md`. Frames (unwrapped positions Å, velocities Å/ps, potential
energy eV, temperature K, step) go to ``trajectory.h5`` every ``interval`` production
steps (:class:`~phonion.formats.TrajectoryWriter`). The file carries its own checkpoint:
the state (positions, velocities, the thermostat's random state and chain variables) is
saved with every frame and every ``interval`` equilibration steps, and ``committed_step``
is written last and flushed. A rerun after SIGTERM, SIGKILL or a wall-time limit truncates
the datasets to the committed frames, restores the state and continues to exactly the
requested step count: no duplicated or missing frames, and on the same machine the same
trajectory as an uninterrupted run, bit for bit. SIGTERM/SIGINT are caught and end the
run cleanly at the next step boundary.

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
from dataclasses import replace
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.constraints import FixCom
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.neighborlist import neighbor_list

from .errors import PhonionError
from .formats import TrajectoryWriter, read_trajectory
from .settings import MDSettings

__all__ = ["Diverged", "Interrupted", "MDSettings", "run_md", "run_adaptive",
           "read_trajectory"]

V_ASE_TO_A_PS = units.fs * 1000.0  # ASE velocity unit -> Å/ps


class Diverged(PhonionError):
    """The MD run blew up; the message says how and at which step."""


class Interrupted(PhonionError):
    """SIGTERM/SIGINT arrived; the trajectory is consistent up to the committed step."""


def _thermostat(atoms: Atoms, s: MDSettings, rng: np.random.Generator):
    dt = s.timestep_fs * units.fs
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


def _thermostat_state(dyn, rng: np.random.Generator) -> str:
    """JSON of what a resumed run needs besides positions and velocities: the random
    generator's state and, for the Nosé–Hoover chain, its variables."""
    state: dict = {"rng": rng.bit_generator.state}
    chain = getattr(dyn, "_thermostat", None)
    if chain is not None:
        state["nhc"] = [chain._eta.tolist(), chain._p_eta.tolist()]
    return json.dumps(state)


def _restore_thermostat(dyn, rng: np.random.Generator, text: str) -> None:
    if not text:
        return
    state = json.loads(text)
    rng.bit_generator.state = state["rng"]
    chain = getattr(dyn, "_thermostat", None)
    if chain is not None and "nhc" in state:
        chain._eta = np.array(state["nhc"][0])
        chain._p_eta = np.array(state["nhc"][1])


def _fingerprint(s: MDSettings, atoms: Atoms) -> str:
    """Settings and starting structure that define the run, except its length: a longer
    ``production_steps`` extends an existing trajectory instead of restarting it, a changed
    structure (relaxed again, another supercell) starts over."""
    d = s.run_fingerprint()
    h = hashlib.sha256()
    for arr in (atoms.numbers, np.round(atoms.cell.array, 6), np.round(atoms.positions, 6)):
        h.update(np.ascontiguousarray(arr).tobytes())
    d["structure_sha256"] = h.hexdigest()
    return json.dumps(d, sort_keys=True)


def committed_production_steps(path: str | Path, settings: MDSettings, atoms: Atoms) -> int:
    """Production steps already committed in ``path`` by a run with these settings (0 if
    there is no such file, it is unreadable, or it was made with other settings)."""
    import h5py

    path = Path(path)
    if not path.exists():
        return 0
    try:
        with h5py.File(path, "r") as h5:
            if h5.attrs.get("fingerprint") != _fingerprint(settings, atoms):
                return 0
            step = int(h5.attrs.get("committed_step", -1))
    except (OSError, KeyError, ValueError):  # killed before its first flush, or damaged
        return 0
    return max(step - settings.equilibration_steps, 0)


def initial_state(atoms: Atoms, s: MDSettings, force_constants: np.ndarray | None,
                  rng: np.random.Generator) -> str:
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
    total = s.equilibration_steps + s.production_steps
    meta = {"dt_fs": s.timestep_fs, "interval": s.interval,
            "frame_dt_ps": s.timestep_fs * s.interval / 1000.0,
            "target_temperature_K": s.temperature_K,
            "equilibration_steps": s.equilibration_steps, "thermostat": s.thermostat}
    traj = TrajectoryWriter(path, atoms, _fingerprint(s, atoms), meta, total)
    rng = np.random.default_rng(s.seed)
    saved = ""
    if traj.committed_step >= 0:
        start, positions, momenta, saved = traj.restore()
        atoms.positions = positions
        atoms.set_momenta(momenta)
        resumed_from = start if start < total else None
        started_from = traj.attr("initial_state", "unknown")
    else:
        started_from = initial_state(atoms, s, force_constants, rng)
        traj.set_attr("initial_state", started_from)
        start, resumed_from = 0, None
    stop = {"signal": None}

    def handler(signum, _frame):
        stop["signal"] = signum

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    t0 = time.perf_counter()
    last_report = t0
    n_steps_done = 0
    try:
        dyn = _thermostat(atoms, s, rng)
        _restore_thermostat(dyn, rng, saved)
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
            frame = raw = None
            if done > s.equilibration_steps and done % s.interval == 0:
                frame = (atoms.positions.copy(), atoms.get_velocities() * V_ASE_TO_A_PS, epot,
                         temp, done)
                # the model's own forces (cached), not the ones FixCom projected for the
                # integrator: what a second model is compared with (md_committee)
                raw = atoms.get_forces(apply_constraint=False)
            traj.commit(done, atoms.positions, atoms.get_momenta(), _thermostat_state(dyn, rng),
                        frame, raw)
            now = time.perf_counter()
            if log and now - last_report > progress_every_s:
                rate = n_steps_done / (now - t0)
                print(f"[md] step {done}/{total} T = {temp:.0f} K, {rate:.2f} steps/s, "
                      f"ETA {(total - done) / rate / 60:.1f} min", file=log, flush=True)
                last_report = now
        wall = time.perf_counter() - t0
        n_frames = int(traj.attr("n_frames"))
    finally:
        traj.close()
        for sig, h in old.items():
            signal.signal(sig, h)
    return {"n_steps": total, "n_frames": n_frames, "steps_this_run": n_steps_done,
            "initial_state": str(started_from),
            "resumed_from_step": resumed_from, "wall_time_s": wall,
            "steps_per_s": n_steps_done / wall if wall > 0 else None}


def run_adaptive(atoms: Atoms, calculator: Calculator, settings: MDSettings,
                 path: str | Path, converged=None, log=sys.stdout,
                 force_constants: np.ndarray | None = None) -> dict:
    """Run MD, then extend production in chunks of ``settings.adaptive_chunk_steps`` until
    ``converged(path)`` says so or ``adaptive_max_production_steps`` is reached (beyond the
    seeds; ``md.adaptive`` in config).

    ``converged`` takes the trajectory path and returns (done, info); the default is
    :func:`d_avg_converged`: is the relative standard error of D_avg below
    ``adaptive_target_rel_stderr`` on a run of at least ``adaptive_min_duration_ps``?
    A killed run resumes
    in the chunk it was in: the production length restarts from the committed steps
    rounded up to the chunk grid, so the sequence of lengths is the same as without the
    kill. Returns :func:`run_md`'s summary of the last chunk with ``production_steps``,
    ``converged``, the per-chunk ``adaptive`` history and totals over all chunks.
    """
    chunk_steps = settings.adaptive_chunk_steps
    max_production_steps = settings.adaptive_max_production_steps
    converged = converged or (lambda p: d_avg_converged(p, settings))
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


def d_avg_converged(path: str | Path, s: MDSettings) -> tuple[bool, dict]:
    """The adaptive stopping rule on the trajectory at ``path`` (see
    :func:`phonion.diffusion.d_avg_converged`)."""
    from .diffusion import d_avg_converged as rule
    from .settings import DiffusionSettings

    return rule(read_trajectory(path), DiffusionSettings(mobile_ion=s.mobile_ion),
                s.adaptive_target_rel_stderr, s.adaptive_min_duration_ps)


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
