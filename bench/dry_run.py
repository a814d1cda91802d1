"""Time of `snakemake -n` (parse + DAG) for a campaign of N materials.

N structure files are made by copying the demo CIFs under new names into a temporary folder;
the dry run plans every stage of every material (the DAG has no checkpoints) plus the
campaign status. Usage:
    python bench/dry_run.py [N]        (default 4000)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(n: int) -> None:
    demo = sorted((ROOT / "config/demo/structures").glob("*.cif"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "structures"
        folder.mkdir()
        for k in range(n):
            src = demo[k % len(demo)]
            shutil.copy(src, folder / f"{src.stem}-{k:05d}.cif")
        cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "1",
               "--config", f"structures={{folder: {folder}}}", f"results={tmp}/results"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(proc.stderr[-2000:])
        out = proc.stdout + proc.stderr
        table = out[out.index("Job stats:"):].split("\n\n")[0]
        print(f"{n} materials: snakemake -n in {wall:.1f} s\n{table}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4000)
