"""The relax stage of a 2-material campaign through profiles/slurm on a real SLURM.

tests/slurm/start_slurm.sh starts munge, slurmctld and slurmd on this machine
(single node, no accounting database, so job states come from squeue).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from conftest import RIGID, ROOT, read_status, snakemake

pytestmark = [pytest.mark.slow, pytest.mark.slurm]


@pytest.fixture(scope="module")
def slurm():
    missing = [c for c in ("slurmctld", "slurmd", "sbatch", "munged") if not (
        shutil.which(c) or os.path.exists(f"/usr/sbin/{c}"))]
    if missing or os.geteuid() != 0:
        why = f"needs root and SLURM ({', '.join(missing) or 'not root'})"
        if os.environ.get("CI"):
            pytest.fail(why + ": .ci/run installs them")
        pytest.skip(why)
    subprocess.run(["bash", str(ROOT / "tests/slurm/start_slurm.sh")], check=True)


def test_relax_through_slurm_profile(campaign, slurm):
    proc = snakemake(campaign, "--profile", str(ROOT / "profiles/slurm"),
                     config={**RIGID, "structures": {"folder": "structures"}}, timeout=600)
    status = read_status(campaign)
    assert {m: r["status"] for m, r in status.items()} == {"NaCl": "ok", "Na2O": "ok"}
    assert all(r["stage"] == "relax" for r in status.values())
    log = proc.stdout + proc.stderr
    # both material chains (intake + relax, grouped) went through sbatch
    job_ids = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    assert len(job_ids) == 2, log[-3000:]
    for job_id in job_ids:  # SLURM itself says the jobs ran to completion
        info = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True,
                              text=True, check=True).stdout
        assert "JobState=COMPLETED" in info, info
