"""MD overhead: MD steps/s (trajectory writing included) ÷ raw force calls/s, same cell.

Usage: python bench/md_throughput.py [backend] [model] [n_steps]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.build import bulk

from phonion.calculators import get_calculator
from phonion.md import run_md
from phonion.settings import MDSettings


def main(backend: str = "sevenn", model: str = "7net-0", n: int = 200) -> None:
    atoms = bulk("NaCl", "rocksalt", a=5.69, cubic=True) * (3, 3, 3)  # 216 atoms
    calc = get_calculator(backend, model, "cpu", "float64").calculator
    a = atoms.copy()
    a.calc = calc
    a.get_forces()  # warm-up
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(n):
        a.positions = atoms.positions + rng.normal(0, 0.02, atoms.positions.shape)
        a.get_forces()
    raw = n / (time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as tmp:
        s = MDSettings(temperature_K=800, equilibration_steps=0, production_steps=n, interval=4)
        t0 = time.perf_counter()
        summary = run_md(atoms, calc, s, Path(tmp) / "t.h5", log=None)
        md = n / (time.perf_counter() - t0)
    print(f"{backend}:{model} {len(atoms)} atoms: raw force calls {raw:.3f}/s, MD steps "
          f"{md:.3f}/s (frames {summary['n_frames']}), ratio {md / raw:.3f}")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(*(args[:2] or ["sevenn", "7net-0"]), *(int(x) for x in args[2:3]))
