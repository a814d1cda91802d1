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

import os
from pathlib import Path

from .formats import atomic_path
from .md import _fingerprint, committed_production_steps
from .settings import MDSettings

#: the record a pool leaves in each member's ``md`` folder
RECORD = "pool.json"


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
            import shutil

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
        from .formats import read_json

        try:
            model = read_json(Path(passed_on).parent / "md.json")["provenance"]["model"]
        except Exception:  # noqa: BLE001 - no readable result beside it
            model = None
        return {"fingerprint": fp, "status": "done", "already_complete": True,
                "model": model}
    if isinstance(outcome, dict):
        return {"fingerprint": fp, "status": "done", "summary": outcome}
    from .md import Diverged

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
    from .md import Diverged

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
    from .formats import read_json

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
    from .formats import write_json

    for path, runs in records.items():
        write_json(path, {"pool": pool, "runs_in_batch": runs_in_batch, "model": model,
                          "runs": runs})


def pending(displace: str, settings: str, trajectories: list[str]) -> tuple[int, str]:
    """(runs a pool would run for this member, its thermostat): the runs whose finished
    trajectory is not complete for the member's settings (all of them when its upstream
    cannot be read yet). For the SLURM shape of a pool job (``md_pool_resource``)."""
    import dataclasses

    from .formats import atoms_from_dict, read_result

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
