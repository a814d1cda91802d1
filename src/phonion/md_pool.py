"""Several materials in one MD batch (``md.engine: torch_sim`` with ``md.batch_materials``
> 1; issue 28): a pool job runs every temperature of its materials as one
:func:`~phonion.md_batch.run_batch`, and each material's own ``md_batch`` job then adopts
its finished runs instead of running them.

Why two jobs and not one: a Snakemake job that wrote several materials' trajectories would
delete and rerun all of them whenever one material changed. Here the pool writes only the
checkpoint files (``md/<T>K/trajectory.partial.h5``, which no rule declares) and one small
record per material (``md/pool.json``, :func:`write_records`); each material keeps its own
``md_batch`` job and outputs, and reads the record as an input Snakemake treats as
``ancient`` (a rerun pool does not rerun a material whose own inputs did not change).
A rerun pool (another member changed, or materials were added) finds the finished runs of
the unchanged members — same fingerprint, all steps — and passes them on as they are,
without a step: their checkpoint file becomes a hard link of the finished trajectory (no
copy, no write to it), so whichever job reruns them later finds them complete.

A run's trajectory does not depend on what it is batched with (each run has its own random
streams; ``tests/test_md_batch.py``), so pooling changes how fast, never what, MD gives.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from . import formats
from .formats import atomic_path, atoms_from_dict, read_json, read_result, write_json
from .md import Diverged, Interrupted, _fingerprint, committed_production_steps
from .settings import MDSettings


def partial_of(trajectory: str | os.PathLike) -> Path:
    """The checkpoint file of a run whose finished trajectory is ``trajectory``."""
    return Path(trajectory).with_suffix(".partial.h5")


def complete(path: str | os.PathLike, s: MDSettings, atoms) -> bool:
    """Whether ``path`` holds exactly the steps of the run of ``s`` on ``atoms`` (same
    fingerprint; a longer run is not this one, as :class:`~phonion.formats.TrajectoryWriter`
    starts such a file over)."""
    return committed_production_steps(path, s, atoms) == s.production_steps


def pass_on_finished(trajectory: str | os.PathLike, s: MDSettings, atoms) -> bool:
    """A finished run the pool does not run again: when ``trajectory`` is complete for
    these settings, make its checkpoint file a hard link of it (nothing is copied or
    written) and return True."""
    final, partial = Path(trajectory), partial_of(trajectory)
    if not complete(final, s, atoms):
        if final.exists() and partial.exists() and os.path.samefile(final, partial):
            # a run to extend: its checkpoint must not write into the finished file
            with atomic_path(partial) as tmp:
                shutil.copyfile(final, tmp)
        return False
    if complete(partial, s, atoms):
        return True
    try:
        partial.unlink(missing_ok=True)
        os.link(final, partial)
    except OSError:  # no hard links here: passed on all the same (its md_batch job does
        pass  # not rerun; if it ever does, it runs the run itself)
    return True


def entry(s: MDSettings, atoms, outcome: dict | Exception | None, passed_on: str | None
          ) -> dict:
    """One run's line of a pool record: its fingerprint and what the pool did with it
    (``passed_on``: the finished trajectory of a run the pool did not run again; the model
    of its ``md.json``, if there is one, is kept for the adopting job's provenance)."""
    fp = _fingerprint(s, atoms)
    if passed_on:
        try:
            model = read_json(Path(passed_on).parent / "md.json")["provenance"]["model"]
        except Exception:  # noqa: BLE001 - no readable result beside it
            model = None
        return {"fingerprint": fp, "status": "done", "already_complete": True,
                "model": model}
    if isinstance(outcome, dict):
        return {"fingerprint": fp, "status": "done", "summary": outcome}
    if isinstance(outcome, Diverged):
        return {"fingerprint": fp, "status": "diverged", "reason": str(outcome)}
    return {"fingerprint": fp, "status": "not run",
            "reason": str(outcome) if outcome is not None else "not run by the pool"}


def adopt(rec: dict | None, key: str, s: MDSettings, atoms, trajectory: str | os.PathLike
          ) -> dict | Exception | None:
    """What a member's ``md_batch`` job takes from its pool for the run ``key`` ("600K"):
    the pool's summary with the model that ran it under ``model`` (the run's checkpoint
    file complete for these settings), the
    :class:`~phonion.md.Diverged` the pool stopped it with, or None (run it here)."""
    e = (rec or {}).get("runs", {}).get(key)
    if not e or e.get("fingerprint") != _fingerprint(s, atoms):
        return None
    if e["status"] == "diverged":
        return Diverged(e["reason"])
    if e["status"] != "done" or not complete(partial_of(trajectory), s, atoms):
        return None
    import h5py

    with h5py.File(partial_of(trajectory), "r") as h5:
        n_frames = int(h5.attrs["n_frames"])
        started = str(h5.attrs.get("initial_state", "unknown"))
    pool = {"pool": rec["pool"], "pool_runs": rec["runs_in_batch"], "n_frames": n_frames,
            "model": e.get("model") or rec.get("model")}
    if e.get("already_complete"):
        return {"n_steps": s.equilibration_steps + s.production_steps, "steps_this_run": 0,
                "initial_state": started, "resumed_from_step": None, "wall_time_s": 0.0,
                "steps_per_s": None, "engine": "torch_sim", "already_complete": True,
                **pool}
    return {**e["summary"], **pool}


def adoptable(record_path: str | os.PathLike, trajectories: list[str]) -> bool:
    """Whether a member's job will only adopt (every run done with its checkpoint file
    present, or diverged): the SLURM profile then sends it to one CPU for minutes. Read
    without the settings, so a stale record errs towards the GPU shape only through
    :func:`adopt` running the run after all."""
    try:
        runs = read_json(record_path).get("runs", {})
    except Exception:  # noqa: BLE001 - no record yet: the job may run MD
        return False
    if len(runs) < len(trajectories) or not runs:
        return False
    for tr in trajectories:
        e = runs.get(Path(tr).parent.name)
        if not e or not (e["status"] == "diverged"
                         or (e["status"] == "done" and partial_of(tr).exists())):
            return False
    return True


def write_records(pool: str, records: dict[str, dict], runs_in_batch: int,
                  model: dict | None) -> None:
    """Write each member's record (path → {T key: entry}) atomically."""
    for path, runs in records.items():
        write_json(path, {"pool": pool, "runs_in_batch": runs_in_batch, "model": model,
                          "runs": runs})


def pending(displace: str, settings: str, trajectories: list[str]) -> tuple[int, str]:
    """(runs a pool would run for this member, its thermostat): the runs whose finished
    trajectory is not complete for the member's settings (all of them when its upstream
    cannot be read yet). For the SLURM shape of a pool job (``md_pool_resource``)."""
    try:
        atoms = atoms_from_dict(read_result(displace)["supercell"])
        base = MDSettings.from_json(Path(settings).read_text(), temperature_K=300.0)
    except Exception:  # noqa: BLE001 - not there yet: count every run
        return len(trajectories), ""
    left = 0
    for tr in trajectories:
        s = dataclasses.replace(base, temperature_K=float(Path(tr).parent.name[:-1]))
        left += not complete(tr, s, atoms)
    return left, base.thermostat


def run_pool(pool: str, displace: list[str], stability: list[str], fc2: list[str],
             settings: list[str], temps: list[float], trajectories: list[str],
             records: list[str], device: str = "cpu") -> int:
    """Run pool ``pool``: every temperature ``temps`` (K) of its materials (per material its
    displace and stability results, fc2 file, md settings file and record path; the
    trajectories material by material) as one batch with :func:`phonion.md_batch.run_batch`
    (one batch per thermostat). A finished run of an unchanged material is passed on without
    a step (:func:`pass_on_finished`); what the batch cannot run (a member whose upstream is
    not ok, its elements, an ``md.adaptive`` override, a batch that stops) is left to the
    material's own ``md_batch`` job with the reason in its record. Returns 1 when a signal
    stopped the batch (every run committed; the retry resumes), else 0 with every record
    written."""
    from .calculators import check_elements
    from .errors import ConfigError
    from .md_batch import Member, batch_model, engine_problem, run_batch

    k = len(temps)
    plan, members = [], []
    for i, record in enumerate(records):
        try:
            ups = [formats.read_result(displace[i]), formats.read_result(stability[i])]
        except formats.DamagedFile as exc:
            print(f"[md_pool] {record}: {exc}; its md_batch job reports it", flush=True)
            plan.append((record, None))
            continue
        if any(u["status"] != "ok" for u in ups):
            plan.append((record, None))
            continue
        mid = ups[0]["material_id"]
        try:
            base = MDSettings.from_json(Path(settings[i]).read_text(), temperature_K=temps[0])
            atoms = formats.atoms_from_dict(ups[0]["supercell"])
            fc = formats.read_fc2(fc2[i]) if base.initial_state == "harmonic" else None
        except Exception as exc:  # noqa: BLE001 - this member alone: its md_batch job runs it
            print(f"[md_pool] {mid}: not pooled ({type(exc).__name__}: {exc}); its md_batch "
                  "job runs it", flush=True)
            plan.append((record, None))
            continue
        for T, tr in zip(temps, trajectories[i * k:(i + 1) * k], strict=True):
            s = dataclasses.replace(base, temperature_K=T)
            if pass_on_finished(tr, s, atoms):
                plan.append((record, (f"{T:g}K", s, atoms, None, tr)))
            else:
                m = Member(f"{mid}/{T:g}K", atoms, s, partial_of(tr), fc)
                members.append(m)
                plan.append((record, (f"{T:g}K", s, atoms, m.key, tr)))
    outcome: dict = {}
    description = None
    if members:
        why = engine_problem(MDSettings())  # torch-sim importable (settings: per member)
        if why:
            raise ConfigError(why)
        s0 = members[0].settings
        model, description = batch_model(s0.backend, s0.model, device, s0.modal)
        runnable = []
        for m in members:  # what cannot run here is left to the material's own job
            try:
                why = engine_problem(m.settings, check_import=False)
                if why:
                    raise ConfigError(why)
                check_elements(model.loaded, m.atoms.get_chemical_symbols())
                runnable.append(m)
            except ConfigError as exc:
                outcome[m.key] = exc
        # one thermostat per batch: a material whose overrides pick another runs after
        for thermostat in dict.fromkeys(m.settings.thermostat for m in runnable):
            group = [m for m in runnable if m.settings.thermostat == thermostat]
            n_mat = len({m.key.split("/")[0] for m in group})
            print(f"[md_pool] {pool}: {len(group)} run(s) of {n_mat} material(s) as one "
                  f"batch ({thermostat}, on {device})", flush=True)
            try:
                outcome.update(run_batch(group, model))
            except Exception as exc:  # noqa: BLE001 - e.g. out of GPU memory: each
                print(f"[md_pool] {pool}: the batch stopped ({type(exc).__name__}: "
                      f"{exc}); each material's md_batch job runs its own", flush=True)
                for m in group:
                    outcome.setdefault(m.key, exc)
            if any(isinstance(v, Interrupted) for v in outcome.values()):
                break
    if any(isinstance(v, Interrupted) for v in outcome.values()):
        print(f"[md_pool] {pool}: interrupted, every run committed; rerun to resume",
              flush=True)
        return 1
    written: dict[str, dict] = {}
    for record, run in plan:
        runs = written.setdefault(record, {})
        if run is not None:
            key, s, atoms, mkey, tr = run
            runs[key] = entry(s, atoms, outcome.get(mkey) if mkey else None,
                              None if mkey else tr)
    write_records(pool, written, len(members), description)
    done = sum(isinstance(v, dict) for v in outcome.values())
    passed = sum(1 for _, run in plan if run is not None and run[3] is None)
    print(f"[md_pool] {pool}: {done} runs finished, {passed} passed on as already "
          f"complete, {len(outcome) - done} stopped (reasons in the records)", flush=True)
    return 0
