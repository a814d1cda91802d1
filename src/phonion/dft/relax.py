"""Relaxation by a DFT engine (config ``relax.engine: vasp | cp2k``; issue 14): the same
``relax`` stage result as the MLP relaxation (relaxed structure, energy, volume change,
space group before and after with the same verdict on a symmetry change), so every later
stage reads it unchanged.

One run folder, reused when its run checks complete *and* it was written for the same
engine, protocol and atoms (``request.json``); anything else is removed and run again. A
relaxation that ends at the engine's step limit is ``failed`` with the engine's reason (the
engine's own restart files stay in the folder for the user).
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


def run_relax(engine: DFTEngine, protocol, atoms: Atoms, workdir: str | os.PathLike,
              run_kwargs: dict | None = None, log: Callable[[str], None] = print,
              run_protocol=None) -> tuple[Atoms, dict]:
    """Relax ``atoms`` with ``engine`` under ``protocol`` (positions, and the cell when the
    protocol says so) in ``workdir``; return the relaxed atoms (energy in eV in
    ``atoms.info["energy_eV"]``) and a record (reused, wall time s). ``run_protocol``:
    ``protocol`` with the run command filled in (not hashed). Raises
    :class:`~phonion.dft.DFTRunFailed` with the engine's reason."""
    d = Path(workdir)
    tag = json.dumps({"task": "relax", "protocol": json.loads(protocol.to_json())},
                     sort_keys=True)
    digest = request_hash(engine.name, tag, atoms)
    if written_for(d, digest) and engine.check(d)[0]:
        log(f"{engine.name} relaxation in {d} is done: reused")
        return engine.read_relaxed(d), {"reused": True, "run_wall_s": 0.0}
    if d.exists():
        shutil.rmtree(d)
    engine.write_relax(atoms, d, run_protocol or protocol)
    (d / REQUEST).write_text(json.dumps({"sha256": digest}) + "\n")
    log(f"{engine.name} relaxation of {len(atoms)} atoms ...")
    t0 = time.perf_counter()
    engine.run(d, run_protocol or protocol, **(run_kwargs or {}))
    wall = round(time.perf_counter() - t0, 1)
    log(f"{engine.name} relaxation: done in {wall:.1f} s")
    relaxed = engine.read_relaxed(d)
    if relaxed.get_chemical_symbols() != atoms.get_chemical_symbols():
        raise DFTRunFailed(d, f"the relaxed structure holds {relaxed.get_chemical_formula()}"
                           f" in another order or amount than the input "
                           f"{atoms.get_chemical_formula()}")
    return relaxed, {"reused": False, "run_wall_s": wall}
