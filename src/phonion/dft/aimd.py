"""AIMD of a validated material at one temperature, run in segments that survive wall-time
limits (issue 14; seed 000 §2.6: NVT Nosé–Hoover, 1.5 fs, Γ point).

Segments live in ``workdir/seg000``, ``seg001``, …. A job starts the first segment, or, when
segments exist, asks the engine to continue from the last one (CP2K from its restart file,
VASP from the last complete XDATCAR frames) until the run reaches the requested steps; a
job killed by SLURM leaves a partial segment, and the next job continues from it. The
segments are joined by the engine (every step once) into one trajectory in phonion's
layout. A segment folder written for another engine, protocol, structure, temperature or
length is never continued: the run starts over.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from ase import Atoms

from . import DFTEngine, DFTRunFailed
from .forces import REQUEST, request_hash, written_for

#: segments one job may start before it gives up (a segment that makes no progress)
MAX_SEGMENTS = 100


def _segments(workdir: Path) -> list[Path]:
    return sorted(p for p in workdir.glob("seg[0-9][0-9][0-9]") if p.is_dir())


def run_aimd(engine: DFTEngine, protocol, atoms: Atoms, temperature_K: float, steps: int,
             workdir: str | os.PathLike, run_kwargs: dict | None = None,
             log: Callable[[str], None] = print, run_protocol=None) -> tuple[dict, dict]:
    """Run (or continue) ``steps`` NVT AIMD steps of ``atoms`` at ``temperature_K`` with
    ``engine`` under ``protocol`` in ``workdir``; return the joined trajectory
    (:func:`phonion.formats.read_trajectory` layout) and a record (segments, steps each
    segment started from, wall times in s). ``run_protocol``: ``protocol`` with the run
    command filled in (not hashed). A failed segment raises
    :class:`~phonion.dft.DFTRunFailed` with the engine's reason."""
    workdir = Path(workdir)
    run_protocol = run_protocol or protocol
    tag = json.dumps({"protocol": json.loads(protocol.to_json()),
                      "temperature_K": float(temperature_K), "steps": int(steps)},
                     sort_keys=True)
    digest = request_hash(engine.name, tag, atoms)
    segs = _segments(workdir)
    if segs:
        if not written_for(segs[0], digest):
            log("segments in the work folder were written for other settings: starting over")
            shutil.rmtree(workdir)
            segs = []
    record: dict = {"segments_made": [], "segment_wall_s": {}, "continued_from_step": {}}
    for _ in range(MAX_SEGMENTS):
        if not segs:
            d = workdir / "seg000"
            engine.write_aimd(atoms, d, run_protocol, temperature_K, steps)
        else:
            ok, why = engine.check(segs[-1])
            if ok:
                break
            d = workdir / f"seg{len(segs):03d}"
            shutil.rmtree(d, ignore_errors=True)
            seg = engine.continue_aimd(segs[-1], d, run_protocol, steps)
            if seg is None:
                break
            step0 = seg.get("restart_step", seg.get("first_step"))
            record["continued_from_step"][d.name] = step0
            log(f"{segs[-1].name} stopped ({why}): continuing from step {step0} in {d.name}")
        (d / REQUEST).write_text(json.dumps({"sha256": digest}) + "\n")
        t0 = time.perf_counter()
        log(f"{engine.name} AIMD {d.name}: {steps} steps at {temperature_K:g} K ...")
        engine.run(d, run_protocol, **(run_kwargs or {}))
        record["segment_wall_s"][d.name] = round(time.perf_counter() - t0, 1)
        record["segments_made"].append(d.name)
        log(f"{engine.name} AIMD {d.name}: done in {record['segment_wall_s'][d.name]:.1f} s")
        segs = _segments(workdir)
    else:
        raise DFTRunFailed(workdir, f"no complete run after {MAX_SEGMENTS} segments")
    record["segments"] = [p.name for p in segs]
    traj = engine.concatenate_segments(segs, temperature_K)
    return traj, record
