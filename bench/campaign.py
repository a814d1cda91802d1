"""One workflow campaign in a work folder, for the benchmark scripts that measure through
Snakemake (bench/finetune.py, bench/committee_structures.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def run_campaign(workdir: Path, config: dict, structures: Iterable[Path],
                 cores: str = "2") -> tuple[int, float]:
    """Copy ``structures`` into ``workdir/structures``, write ``config`` (its
    ``structures.folder`` is set to that folder) and run the workflow there with
    ``--keep-going``. Returns Snakemake's exit status and the wall time in s."""
    folder = workdir / "structures"
    folder.mkdir(parents=True, exist_ok=True)
    for src in structures:
        shutil.copy(src, folder / src.name)
    config = {**config, "structures": {"folder": "structures"}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile",
                           str(ROOT / "Snakefile"), "--directory", str(workdir),
                           "--configfile", str(workdir / "config.yaml"), "--cores", cores,
                           "--keep-going"])
    return proc.returncode, time.time() - t0
