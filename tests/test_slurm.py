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
              "phonons": {"min_atoms": 32, "temperatures_K": [800]},
              # this 2-core test node has no GPU: a stable material's MD asks for none
              "slurm": {"md_gpus": 0, "md_cpus": 2, "md_mem_mb": 1500}}
    proc = snakemake(campaign, "--profile", str(ROOT / "profiles/slurm"), config=config,
                     timeout=900)
    status = read_status(campaign)
    assert status["NaCl"]["status"] == "ok"
    assert status["NaCl"]["stage"] == "arrhenius"
    # anti-fluorite Na2O is dynamically unstable under the rigid-ion test potential:
    # it stops at the stability screen; its later stages only write 'skipped'
    assert status["Na2O"]["stage"] == "stability" and status["Na2O"]["status"] == "failed"
    assert "dynamically unstable" in status["Na2O"]["reason"]
    md_skipped = json.loads((campaign / "results/materials/Na2O/md/800K/md.json").read_text())
    assert md_skipped["status"] == "skipped"
    log = proc.stdout + proc.stderr
    # per material: the CPU chain (intake .. phonon descriptors) in one job, MD with its
    # analysis in one job, Arrhenius in one job
    submitted = re.findall(r"Job (\S+) has been submitted with SLURM jobid (\d+)", log)
    assert len(submitted) == 6, log[-3000:]
    md = json.loads((campaign / "results/materials/NaCl/md/800K/md.json").read_text())
    assert md["status"] == "ok" and md["n_frames"] == 25
    cpus = []
    for _, job_id in submitted:  # SLURM itself says the jobs ran to completion
        info = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True,
                              text=True, check=True).stdout
        assert "JobState=COMPLETED" in info, info
        if "Comment=rule_md" in info:
            cpus.append(int(re.search(r"NumCPUs=(\d+)", info)[1]))
    # the MD job of the stable material got the MD shape (here 2 cores, on a cluster the
    # GPU partition and md_gpus GPUs); that of the unstable one, which only wrote
    # 'skipped', one core for a few minutes
    assert sorted(cpus) == [1, 2], cpus
