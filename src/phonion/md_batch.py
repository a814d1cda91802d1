"""Batched NVT MD (``md.engine: torch_sim``; issue 28): many runs — the temperatures of a
material, or several materials — integrated as one batch, one force evaluation of the whole
batch per step, with the physics, files and checkpoints of :func:`phonion.md.run_md`.

Seed 000 ran ~900 materials × several temperatures of 75 ps MLP MD; one ASE loop per run
leaves a GPU mostly idle on 100–200-atom cells. torch-sim (``torch-sim-atomistic``) holds
many systems in one :class:`torch_sim.SimState` and evaluates SevenNet on all of them in
one graph (:func:`batch_model`); other backends are evaluated system by system through
their ASE calculator (same integrator and files, no speed-up).

The integrators (every ``md.thermostat``, with the ASE engine's semantics) are in
:mod:`phonion.md_batch_step`.

Each run writes its own ``trajectory.h5`` (:class:`~phonion.formats.TrajectoryWriter`,
the same frames, checkpoint and fingerprint as the ASE engine), commits every ``interval``
steps, and stops alone: a run that diverges (the checks of :func:`phonion.md._check`) leaves
the batch with its reason and the others go on; a run that reaches its steps leaves it.
SIGTERM/SIGINT end every run at its last commit; a rerun resumes each to exactly its
requested steps.
"""

from __future__ import annotations

import base64
import json
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms, units

from .formats import TrajectoryWriter
from .md import V_ASE_TO_A_PS, Diverged, Interrupted, _check, _fingerprint, initial_state
from .md_batch_step import BATCH_THERMOSTATS, NHC_LENGTH, Batch, CalculatorModel, _torch
from .settings import MDSettings


def torch_sim_missing(python: str) -> str:
    """Why the interpreter ``python`` (the MD jobs') cannot import torch-sim ('' when it
    can): asked in a subprocess, at parse time, so a campaign never starts MD jobs that
    would all fail."""
    import subprocess

    try:
        proc = subprocess.run([python, "-c", "import torch_sim"], capture_output=True,
                              text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"md.engine torch_sim: cannot ask {python} for torch-sim ({exc})"
    if proc.returncode == 0:
        return ""
    last = (proc.stderr.strip().splitlines() or ["import failed"])[-1]
    return (f"md.engine torch_sim needs the torch-sim-atomistic package in the MD "
            f"environment ({python}: {last}); pip install 'torch-sim-atomistic>=0.3,<0.4' "
            "there (the extra phonion[batch]) or use md.engine ase")


def engine_problem(settings: MDSettings, check_import: bool = True) -> str:
    """Why ``settings`` cannot run with ``md.engine: torch_sim`` ('' when they can)."""
    if settings.thermostat not in BATCH_THERMOSTATS:
        return (f"md.engine torch_sim integrates {', '.join(BATCH_THERMOSTATS)}; "
                f"md.thermostat '{settings.thermostat}' runs with md.engine ase")
    if settings.adaptive:
        return ("md.adaptive extends each run by chunks until D converges: it runs with "
                "md.engine ase")
    if not check_import:
        return ""
    try:
        import torch_sim  # noqa: F401
    except ImportError as exc:
        return (f"md.engine torch_sim needs the torch-sim-atomistic package ({exc}); "
                "install it in the MD environment (envs/sevenn.yaml) or use md.engine ase")
    return ""


@dataclass
class Member:
    """One MD run of a batch: its supercell, settings (temperature included), trajectory
    file and, for a harmonic start, the supercell's force constants (N × N × 3 × 3 eV/Å²)."""

    key: str
    atoms: Atoms
    settings: MDSettings
    path: Path
    force_constants: np.ndarray | None = None
    #: an ASE calculator of this run alone (with a :class:`CalculatorModel` batch)
    calculator: object | None = None


def batch_model(backend: str, model: str, device: str, modal: str = ""):
    """(torch-sim model, description) of the campaign's MLP: SevenNet natively batched
    (torch-sim's wrapper of the network the ASE engine loads, forces equal to its ASE
    calculator's, tests/test_md_batch.py); any other backend through
    :class:`CalculatorModel` (MACE's torch-sim wrapper is not wired yet). The model's
    ``loaded`` attribute is the :func:`~phonion.calculators.get_calculator` result it was
    built from (its supported elements)."""
    from .calculators import _sevenn_model, get_calculator, model_file

    if backend == "sevenn":
        import sevenn.calculator
        import torch

        # torch-sim 0.3.0 (the newest on PyPI here) imports this name, which sevenn 0.13
        # removed with TorchScript; sevenn's own wrapper (sevenn.torchsim) needs a newer
        # torch-sim. Supplying the name (no TorchScript model is ever loaded here) lets
        # torch-sim's wrapper import; its forces are checked against SevenNetCalculator.
        if not hasattr(sevenn.calculator, "torch_script_type"):
            sevenn.calculator.torch_script_type = torch.jit.ScriptModule
        from torch_sim.models.sevennet import SevenNetModel

        loaded = get_calculator(backend, model, "cpu", "float32", modal)
        net = _sevenn_model(model_file(backend, model), loaded.description["sha256"])
        wrapped = SevenNetModel(model=net, modal=modal or None, device=device)
        wrapped.batched, wrapped.loaded = True, loaded
        return wrapped, {**loaded.description, "device": device}
    loaded = get_calculator(backend, model, device, "float64", modal)
    wrapped = CalculatorModel(loaded.calculator)
    wrapped.loaded = loaded
    return wrapped, loaded.description


class _Run:
    """A member's live state: step counter, random generators, Nosé–Hoover chain
    variables, writer."""

    def __init__(self, m: Member, device):
        torch = _torch()
        s = m.settings
        self.m, self.s = m, s
        self.total = s.equilibration_steps + s.production_steps
        atoms = m.atoms.copy()
        meta = {"dt_fs": s.timestep_fs, "interval": s.interval,
                "frame_dt_ps": s.timestep_fs * s.interval / 1000.0,
                "target_temperature_K": s.temperature_K,
                "equilibration_steps": s.equilibration_steps, "thermostat": s.thermostat,
                "engine": "torch_sim"}
        self.writer = TrajectoryWriter(m.path, atoms, _fingerprint(s, atoms), meta, self.total)
        self.gen = torch.Generator(device=device)  # Langevin noise
        self.gen.manual_seed(int(s.seed))
        self.rng = np.random.default_rng(s.seed)  # initial state, then Bussi (ASE engine's)
        self.eta, self.p_eta = np.zeros(NHC_LENGTH), np.zeros(NHC_LENGTH)
        if self.writer.committed_step >= 0:
            self.start, pos, mom, saved = self.writer.restore()
            if saved:
                state = json.loads(saved)
                if "torch_rng" in state:
                    self.gen.set_state(torch.frombuffer(
                        bytearray(base64.b64decode(state["torch_rng"])), dtype=torch.uint8))
                if "rng" in state:
                    self.rng.bit_generator.state = state["rng"]
                if "nhc" in state:
                    self.eta, self.p_eta = (np.array(v, float) for v in state["nhc"])
            self.resumed_from = self.start if self.start < self.total else None
            self.started_from = self.writer.attr("initial_state", "unknown")
        else:
            self.started_from = initial_state(atoms, s, m.force_constants, self.rng)
            self.writer.set_attr("initial_state", self.started_from)
            pos, mom = atoms.positions.copy(), atoms.get_momenta()
            if s.thermostat == "langevin":
                # no centre-of-mass momentum (the ASE engine's FixCom); kept zero by the
                # steps. Bussi and Nosé–Hoover: the ASE engine's start (already Stationary)
                mom = mom - atoms.get_masses()[:, None] * mom.sum(0) / atoms.get_masses().sum()
            self.start, self.resumed_from = 0, None
        self.positions, self.momenta = np.asarray(pos, float), np.asarray(mom, float)
        self.done = self.start
        self.masses = m.atoms.get_masses()

    @property
    def n_dof(self) -> int:
        """Degrees of freedom of the temperature, as the ASE engine counts them: 3N − 3
        with Langevin's fixed centre of mass, 3N otherwise."""
        return 3 * len(self.masses) - (3 if self.s.thermostat == "langevin" else 0)

    def rng_state(self) -> str:
        """The checkpoint's thermostat state (the keys of the ASE engine's, plus the torch
        generator of the Langevin noise)."""
        state: dict = {"rng": self.rng.bit_generator.state}
        if self.s.thermostat == "langevin":
            state["torch_rng"] = base64.b64encode(self.gen.get_state().numpy().tobytes()
                                                  ).decode()
        if self.s.thermostat == "nose_hoover_chain":
            state["nhc"] = [self.eta.tolist(), self.p_eta.tolist()]
        return json.dumps(state)



def run_batch(members: list[Member], model, log=sys.stdout, progress_every_s: float = 30.0
              ) -> dict[str, dict | Exception]:
    """Run (or resume) every member to ``equilibration + production`` steps as one batch
    with ``model`` (:func:`batch_model`); return, per member key, :func:`phonion.md.run_md`'s
    summary or the :class:`~phonion.md.Diverged` that stopped it. SIGTERM/SIGINT:
    :class:`~phonion.md.Interrupted` for the members not finished (each committed)."""
    runs = [_Run(m, model.device) for m in members]
    out: dict[str, dict | Exception] = {}
    stop = {"signal": None}

    def handler(signum, _frame):
        stop["signal"] = signum

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    t0 = last_report = time.perf_counter()
    n_steps = 0
    try:
        for r in runs:
            if r.done >= r.total:
                out[r.m.key] = _summary(r, 0.0)
        active = [r for r in runs if r.done < r.total]
        while active:
            batch = Batch(active, model)
            left = False
            while not left:
                if stop["signal"] is not None:
                    raise Interrupted(f"signal {stop['signal']}; every run committed; rerun "
                                      "to resume")
                batch.step()
                n_steps += 1
                due = []
                for i, r in enumerate(active):
                    r.done += 1
                    if r.done % r.s.interval == 0 or r.done >= r.total:
                        due.append(i)
                if not due:
                    continue
                fs, raws, es = batch.pull(due)
                for i in due:
                    sl = slice(batch.bounds[i], batch.bounds[i + 1])
                    left |= _commit(active[i], fs[sl], raws[sl], float(es[i]), out,
                                    time.perf_counter() - t0)
                now = time.perf_counter()
                if log and now - last_report > progress_every_s:
                    print(f"[md_batch] {len(active)} runs, step "
                          f"{min(r.done for r in active)}/{max(r.total for r in active)}, "
                          f"{n_steps / (now - t0):.2f} batch steps/s", file=log, flush=True)
                    last_report = now
            batch.pull(range(len(active)))  # the runs that stay go on from here
            active = [r for r in active if r.m.key not in out]
    except Interrupted as exc:
        for r in runs:
            out.setdefault(r.m.key, exc)
    finally:
        for r in runs:
            r.writer.close()
        for sig, h in old.items():
            signal.signal(sig, h)
    return out


def _commit(r: _Run, forces: np.ndarray, raw: np.ndarray, epot: float, out: dict,
            wall: float) -> bool:
    """Check and commit run ``r`` at its current step; True when it leaves the batch
    (finished or diverged)."""
    s = r.s
    atoms = Atoms(r.m.atoms.numbers, positions=r.positions, cell=r.m.atoms.cell, pbc=True,
                  momenta=r.momenta)
    temp = 2 * atoms.get_kinetic_energy() / (r.n_dof * units.kB)
    try:
        _check(atoms, forces, temp, r.done, s)
    except Diverged as exc:
        out[r.m.key] = exc
        return True
    frame = raw_kept = None
    if r.done > s.equilibration_steps and r.done % s.interval == 0:
        frame = (r.positions.copy(), atoms.get_velocities() * V_ASE_TO_A_PS, epot, temp,
                 r.done)
        raw_kept = raw
    r.writer.commit(r.done, r.positions, r.momenta, r.rng_state(), frame, raw_kept)
    if r.done >= r.total:
        out[r.m.key] = _summary(r, wall)
        return True
    return False


def _summary(r: _Run, wall: float) -> dict:
    done = r.done - r.start
    return {"n_steps": r.total, "n_frames": int(r.writer.attr("n_frames")),
            "steps_this_run": done, "initial_state": str(r.started_from),
            "resumed_from_step": r.resumed_from, "wall_time_s": wall,
            "steps_per_s": done / wall if wall > 0 else None, "engine": "torch_sim"}
