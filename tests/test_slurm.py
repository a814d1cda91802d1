"""The relax stage of a 2-material campaign through profiles/slurm on a real SLURM.

tests/slurm/start_slurm.sh starts munge, slurmctld and slurmd on this machine
(single node, no accounting database, so job states come from squeue).
"""

from __future__ import annotations

import json
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


def test_campaign_through_slurm_profile(campaign, slurm):
    config = {**RIGID, "structures": {"folder": "structures"},
              "phonons": {"min_atoms": 32, "temperatures_K": [800]}}
    # this test node has no GPU: the md rule's GPU request is lifted on the command line
    proc = snakemake(campaign, "--profile", str(ROOT / "profiles/slurm"), config=config,
                     timeout=900, extra=["--set-resources", "md:gpu=0"])
    status = read_status(campaign)
    assert status["NaCl"]["status"] == "ok"
    assert status["NaCl"]["stage"] == "arrhenius"
    # anti-fluorite Na2O is dynamically unstable under the rigid-ion test potential:
    # it stops at the stability checkpoint and gets no descriptor job
    assert status["Na2O"]["stage"] == "stability" and status["Na2O"]["status"] == "failed"
    assert "dynamically unstable" in status["Na2O"]["reason"]
    assert not (campaign / "results/materials/Na2O/phonons").exists()
    log = proc.stdout + proc.stderr
    # grouped jobs through sbatch: intake+relax and displace..stability for each
    # material; descriptors, MD, diffusion and Arrhenius for the stable one
    job_ids = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    assert len(job_ids) == 8, log[-3000:]
    md = json.loads((campaign / "results/materials/NaCl/md/800K/md.json").read_text())
    assert md["status"] == "ok" and md["n_frames"] == 25
    for job_id in job_ids:  # SLURM itself says the jobs ran to completion
        info = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True,
                              text=True, check=True).stdout
        assert "JobState=COMPLETED" in info, info
