"""The Snakemake process's CPU per job stays flat as the campaign grows (bench/scheduler.py).

A real run of a synthetic workflow with phonion's DAG shape (11 jobs per material, trivial
job bodies) at 20 and 80 materials, with the scheduler the profiles set: the Snakemake
process's CPU per job at 80 materials stays within 25 % of that at 20. With the
per-material checkpoints phonion had before, it doubles (0.0154 → 0.0305 s, measured).
"""

from __future__ import annotations

import sys

import pytest
import yaml

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from scheduler import measure  # noqa: E402

pytestmark = pytest.mark.slow


def test_profiles_use_the_greedy_scheduler():
    for profile in ("local", "slurm"):
        cfg = yaml.safe_load((ROOT / "profiles" / profile / "config.v8+.yaml").read_text())
        assert cfg["scheduler"] == "greedy", profile


def test_snakemake_cpu_per_job_does_not_grow_with_the_campaign():
    small, large = (measure("static", n, "greedy") for n in (20, 80))
    assert large["cpu_per_job_s"] < 1.25 * small["cpu_per_job_s"], (small, large)
