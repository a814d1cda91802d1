"""2-material campaigns through profiles/slurm on a real SLURM: job counts, a time-limit
kill and a memory kill, each retried with more.

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

# one worker runs them one after another: they share the one-node SLURM (pytest-xdist)
pytestmark = [pytest.mark.slow, pytest.mark.slurm, pytest.mark.xdist_group("slurm")]


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
    # per material: the CPU chain (intake .. phonon descriptors) in one job, the structure
    # and elastic descriptors in one, MD with its analysis in one, Arrhenius in one; each
    # job fits the 2-core node (a group asks for the cores of what it runs side by side)
    submitted = re.findall(r"Job (\S+) has been submitted with SLURM jobid (\d+)", log)
    assert len(submitted) == 8, log[-3000:]
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


def _rigid_step_s(n_cells=2) -> float:
    """Seconds per MD step of a 64-atom rigid-ion NaCl cell on this machine (the test's MD
    supercell has 32 atoms; measured 2026-11-30: 0.12 s here and about 7 steps/s in the
    test, so "100 s" of this cell is about 2 minutes of the test's MD)."""
    import time

    import numpy as np
    from ase import units
    from ase.build import bulk
    from ase.md.langevin import Langevin

    from phonion.potentials import RigidIonPotential

    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(n_cells)
    atoms.calc = RigidIonPotential()
    dyn = Langevin(atoms, 2 * units.fs, temperature_K=800, friction=0.02,
                   rng=np.random.default_rng(0))
    dyn.run(5)
    t0 = time.perf_counter()
    dyn.run(40)
    return (time.perf_counter() - t0) / 40


def test_md_killed_at_its_time_limit_resumes_in_the_retry(campaign, slurm):
    """An MD job that needs about 3 minutes of MD gets a 2-minute SLURM time limit: SLURM
    kills it (TIMEOUT) after it has committed steps (2 minutes leave room for the job's
    start-up, which alone took a minute on a slow day), the profile's retry asks for 4
    minutes (resources scale with the attempt), the MD resumes from its checkpoint and
    finishes (in the 6-minute second retry when the machine slowed down after the
    calibration); the other material is unaffected."""
    steps = int(180 / _rigid_step_s()) // 20 * 20
    config = {**RIGID, "structures": {"folder": "structures"},
              "phonons": {"min_atoms": 32, "temperatures_K": [800]},
              "md": {**RIGID["md"], "production_steps": steps, "interval": 20},
              "slurm": {"md_gpus": 0, "md_cpus": 1, "md_mem_mb": 1500, "md_runtime_min": 2}}
    # MD in a submission of its own (the profile groups it with its analyses, whose default
    # wall time would hide the 1-minute limit of this test)
    import yaml

    groups = yaml.safe_load((ROOT / "profiles/slurm/config.v8+.yaml").read_text())["groups"]
    groups["md"] = "md_alone"  # --groups replaces the profile's groups: give them all
    proc = snakemake(campaign, "--profile", str(ROOT / "profiles/slurm"), "--groups",
                     *[f"{rule}={g}" for rule, g in groups.items()], config=config,
                     timeout=1200)
    log = proc.stdout + proc.stderr
    status = read_status(campaign)
    assert status["NaCl"]["status"] == "ok" and status["NaCl"]["stage"] == "arrhenius", log[-3000:]
    assert status["Na2O"]["stage"] == "stability"  # unstable under the test potential
    md = json.loads((campaign / "results/materials/NaCl/md/800K/md.json").read_text())
    assert md["status"] == "ok"
    assert md["n_steps"] == steps + RIGID["md"]["equilibration_steps"]
    states = {}
    for _, job_id in re.findall(r"Job (\S+) has been submitted with SLURM jobid (\d+)", log):
        info = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True,
                              text=True).stdout
        if "Comment=rule_md" in info or "group_md" in info or "rule_md" in info:
            states[job_id] = (re.search(r"JobState=(\S+)", info)[1],
                              re.search(r"TimeLimit=(\S+)", info)[1])
    assert ("TIMEOUT", "00:02:00") in states.values(), (states, log[-3000:])
    # a retry with attempt × the time finished it: the first (4 min) or, when this machine
    # runs slower than at the calibration above, the second (6 min)
    assert {("COMPLETED", "00:04:00"), ("COMPLETED", "00:06:00")} & set(states.values()), states
    assert md["resumed_from_step"] > 0  # the retry continued the run, it did not restart


def test_relax_killed_for_memory_is_retried_with_more(campaign, slurm):
    """A relax job asks for less memory than it uses: SLURM kills it (slurmd samples RSS
    every second, tests/slurm/start_slurm.sh), the profile's retry asks for attempt × the
    memory (slurm.relax_mem_mb) and the campaign finishes; the other material too."""
    import yaml

    mem = 150  # MB: below what the job (Snakemake's job step + the relax) needs
    config = {**RIGID, "structures": {"folder": "structures"}, "md": {"enabled": False},
              "elastic": {"enabled": False}, "slurm": {"relax_mem_mb": mem}}
    groups = yaml.safe_load((ROOT / "profiles/slurm/config.v8+.yaml").read_text())["groups"]
    groups["relax"] = "relax_alone"  # its own submission, with its own memory request
    proc = snakemake(campaign, "--profile", str(ROOT / "profiles/slurm"), "--groups",
                     *[f"{rule}={g}" for rule, g in groups.items()], config=config,
                     timeout=1200)
    log = proc.stdout + proc.stderr
    status = read_status(campaign)
    assert status["NaCl"]["status"] == "ok", (status, log[-3000:])
    assert status["NaCl"]["stage"] == "phonon_descriptors"  # the whole chain after relax
    assert status["Na2O"]["stage"] == "stability"  # unstable under the test potential
    relax_jobs = []
    for _, job_id in re.findall(r"Job (\S+) has been submitted with SLURM jobid (\d+)", log):
        info = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True,
                              text=True).stdout
        if "relax_alone" in info or "rule_relax" in info:
            relax_jobs.append((re.search(r"JobState=(\S+)", info)[1],
                               int(re.search(r"MinMemoryNode=(\d+)M", info)[1])))
    assert any(state != "COMPLETED" and m == mem for state, m in relax_jobs), relax_jobs
    killed = [p for p in (campaign / ".snakemake/slurm_logs").rglob("*.log")
              if "exceeded memory limit" in p.read_text(errors="replace")]
    assert killed, "no SLURM job log says it was killed for memory"
    assert any(state == "COMPLETED" and m > mem for state, m in relax_jobs), relax_jobs
