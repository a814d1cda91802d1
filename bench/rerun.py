"""Rerun after one changed material vs the full run, on the demo campaign (issue 15).

Runs the demo campaign (config/config.yaml, profiles/local) from nothing in a temporary
results tree, then changes one structure file (NaF, lattice scaled by +0.5 %: a new
structure, as a corrected CIF would be) and runs again. Reports both wall times, the jobs
each ran and their ratio. Usage:
    python bench/rerun.py [material]      (default NaF; about 11 min on 2 cores)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ase.io import read, write

ROOT = Path(__file__).resolve().parents[1]


def _run(folder: Path, results: Path) -> tuple[float, int, str]:
    cmd = [sys.executable, "-m", "snakemake", "--profile", "profiles/local", "--config",
           f"structures={{folder: {folder}}}", f"results={results}"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", proc.stderr)
    rules = sorted(set(re.findall(r"(?:local)?rule (\w+):", proc.stderr)))
    return wall, int(done[-1][1]) if done else 0, " ".join(rules)


def main(material: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "structures"
        shutil.copytree(ROOT / "config/demo/structures", folder)
        results = Path(tmp) / "results"
        full, n_full, _ = _run(folder, results)
        print(f"full run: {full:.1f} s, {n_full} jobs", flush=True)
        cif = folder / f"{material}.cif"
        atoms = read(cif)
        atoms.set_cell(atoms.cell * 1.005, scale_atoms=True)
        write(cif, atoms)
        again, n_again, rules = _run(folder, results)
        print(f"rerun after changing {material}: {again:.1f} s, {n_again} jobs ({rules})")
        print(f"ratio rerun / full: {again / full:.3f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "NaF")
