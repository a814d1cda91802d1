"""DFT static forces on the displaced supercells of the phonon stage (issue 14; seed 000
§2.2 validates its MLP on exactly these configurations).

One run directory per configuration under ``workdir``: ``ref`` (the undisplaced supercell,
whose residual forces are subtracted) and ``000``, ``001``, … (the snapshots, in the order
of ``displace.json``). A directory is reused when its run checks complete *and* it was
written for the same engine, protocol and atoms (``request.json`` holds their hash): a job
killed by a wall-time limit resumes at the first run that is not done, and a changed
protocol or structure never reuses a stale result.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from ase import Atoms

from ..formats import ForceSet
from . import DFTEngine, forceset_from_runs

REQUEST = "request.json"


def request_hash(engine: str, protocol_json: str, atoms: Atoms) -> str:
    """SHA-256 of what decides a static run's result: engine, protocol and atoms (symbols,
    cell and positions rounded to 1e-8 Å)."""
    blob = json.dumps({"engine": engine, "protocol": json.loads(protocol_json),
                       "symbols": atoms.get_chemical_symbols(),
                       "cell": np.round(np.asarray(atoms.cell), 8).tolist(),
                       "positions": np.round(atoms.positions, 8).tolist()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def written_for(directory: Path, digest: str) -> bool:
    """Whether the run folder's ``request.json`` holds ``digest``."""
    try:
        return json.loads((directory / REQUEST).read_text()).get("sha256") == digest
    except (OSError, ValueError):
        return False


def _done(engine: DFTEngine, directory: Path, digest: str) -> bool:
    return written_for(directory, digest) and engine.check(directory)[0]


def static_forces(engine: DFTEngine, protocol, supercell: Atoms, displacements_A: np.ndarray,
                  workdir: str | os.PathLike, run_kwargs: dict | None = None,
                  log: Callable[[str], None] = print, run_protocol=None
                  ) -> tuple[ForceSet, dict]:
    """Forces of ``supercell`` + each row of ``displacements_A`` (Å, snapshots × atoms × 3)
    with ``engine`` under ``protocol`` (the engine's settings), residual forces of the
    undisplaced supercell subtracted; runs that are already done are reused. The SCF of each
    snapshot starts from the reference's wavefunction where the engine supports it (CP2K).
    ``run_protocol``: the same protocol with execution details (the run command) filled in,
    used to write and run; the reuse check hashes ``protocol`` only, so a new command
    reruns nothing. Returns the :class:`~phonion.formats.ForceSet` and a record (runs
    made, reused, wall times in s). A failed run raises :class:`~phonion.dft.DFTRunFailed`
    with its reason."""
    workdir = Path(workdir)
    run_kwargs = dict(run_kwargs or {})
    names = ["ref"] + [f"{k:03d}" for k in range(len(displacements_A))]
    configs = [supercell] + [
        Atoms(supercell.get_chemical_symbols(), positions=supercell.positions + u,
              cell=supercell.cell, pbc=True) for u in np.asarray(displacements_A, float)]
    protocol_json = protocol.to_json()
    run_protocol = run_protocol or protocol
    made, reused, wall = [], [], {}
    for name, atoms in zip(names, configs, strict=True):
        d = workdir / name
        digest = request_hash(engine.name, protocol_json, atoms)
        if _done(engine, d, digest):
            reused.append(name)
            continue
        extra = {}
        if engine.name == "cp2k" and name != "ref":
            from .cp2k import PROJECT

            guess = workdir / "ref" / f"{PROJECT}-RESTART.wfn"
            if guess.is_file():
                extra["wfn_guess"] = guess
        engine.write_static(atoms, d, run_protocol, **extra)
        (d / REQUEST).write_text(json.dumps({"sha256": digest}) + "\n")
        t0 = time.perf_counter()
        log(f"{engine.name} static run {name} ({len(atoms)} atoms) ...")
        engine.run(d, run_protocol, **run_kwargs)
        wall[name] = round(time.perf_counter() - t0, 2)
        log(f"{engine.name} static run {name}: done in {wall[name]:.1f} s")
        made.append(name)
    fs = forceset_from_runs(engine, supercell, displacements_A,
                            [workdir / n for n in names[1:]], reference=workdir / "ref")
    return fs, {"runs_made": made, "runs_reused": reused, "run_wall_s": wall,
                "n_runs": len(names)}
