"""Batched MD throughput (issue 28): MD steps per second per system with SevenNet-0, the ASE
engine's loop (one run) against torch-sim batches of 1, 4, 16, 64 runs (md.engine
torch_sim), trajectory writing and checkpoints included in both.

The cell is natrite Na2CO3 (C2/m, COD 9011304) as a 2 × 2 × 1 supercell (96 atoms, the size
of seed 000's supercells); the runs of a batch are that cell at temperatures spread over
600-900 K. One JSON line per engine and batch size: wall time per batch step, aggregate
steps/s (runs × steps / wall) and its ratio to the ASE loop.

    OMP_NUM_THREADS=2 python bench/md_batch.py --device cpu --steps 8 > bench/md_batch.jsonl
    python bench/md_batch.py --device cuda --steps 200 --sizes 1 4 16 64 128   # on a GPU
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.io import read

from phonion.calculators import get_calculator
from phonion.md import run_md
from phonion.md_batch import Member, batch_model, run_batch
from phonion.settings import MDSettings

ROOT = Path(__file__).resolve().parents[1]


def settings(T: float, steps: int) -> MDSettings:
    return MDSettings(temperature_K=T, equilibration_steps=0, production_steps=steps,
                      interval=4, timestep_fs=1.5, initial_state="maxwell_boltzmann",
                      backend="sevenn", model="7net-0")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=8, help="MD steps per run (a multiple of 4)")
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16, 64])
    a = p.parse_args()
    atoms = read(ROOT / "tests/data/structures/Na2CO3-natrite.cif") * (2, 2, 1)
    calc = get_calculator("sevenn", "7net-0", a.device, "float32").calculator
    warm = atoms.copy()
    warm.calc = calc
    warm.get_forces()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_md(atoms, calc, settings(800.0, a.steps), Path(tmp) / "ase.h5", log=None)
        wall = time.perf_counter() - t0
    ase_rate = a.steps / wall
    print(json.dumps({"engine": "ase", "device": a.device, "atoms": len(atoms), "runs": 1,
                      "steps": a.steps, "wall_s": round(wall, 2),
                      "s_per_step": round(wall / a.steps, 4),
                      "aggregate_steps_per_s": round(ase_rate, 4), "vs_ase": 1.0}),
          flush=True)
    model, _ = batch_model("sevenn", "7net-0", a.device)
    for n in a.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            members = [Member(f"r{k}", atoms, settings(T, a.steps), Path(tmp) / f"{k}.h5")
                       for k, T in enumerate(np.linspace(600, 900, n))]
            t0 = time.perf_counter()
            out = run_batch(members, model, log=None)
            wall = time.perf_counter() - t0
        failed = [k for k, v in out.items() if not isinstance(v, dict)]
        rate = n * a.steps / wall
        print(json.dumps({"engine": "torch_sim", "device": a.device, "atoms": len(atoms),
                          "runs": n, "steps": a.steps, "wall_s": round(wall, 2),
                          "s_per_step": round(wall / a.steps, 4),
                          "aggregate_steps_per_s": round(rate, 4),
                          "vs_ase": round(rate / ase_rate, 3), "failed": failed}),
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
