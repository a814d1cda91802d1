"""Faults after the start: damaged or missing intermediates are regenerated, a job killed
outside phonion still leaves a status line, one results tree serves one campaign, config
values never reach a shell, a full disk is a clear error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from phonion.formats import write_json

from conftest import DEMO, RIGID, ROOT, read_status, snakemake

pytestmark = pytest.mark.slow

FAST = {**RIGID, "structures": {"folder": "structures"},
        "phonons": {"min_atoms": 32, "temperatures_K": [800]},
        "md": {**RIGID["md"], "production_steps": 40},
        "elastic": {"enabled": False}}  # not among the numbers compared here

#: material → what is done to it after the campaign finished
DAMAGE = {
    "A": "delete the material's folder",
    "B": "overwrite trajectory.h5 with random bytes of the same size",
    "C": "truncate fc2.hdf5",
    "D": "truncate relax.json",
    "E": "delete md.json and a diffusion figure",
    "F": "delete forces.h5",
}


def _numbers(mat: Path) -> dict:
    """The science of one material: fc2, MSD, D and its interval, VDOS centre."""
    ph = json.loads((mat / "phonon_descriptors/phonon_descriptors.json").read_text())
    dif = json.loads((mat / "diffusion/800K/diffusion.json").read_text())
    with h5py.File(mat / "fit_ifc/fc2.hdf5") as h5:
        fc2 = h5["force_constants"][()]
    return {"fc2": fc2, "msd": ph["by_temperature_K"]["800"]["msd_mobile_mean_A2"],
            "d": dif["d_avg_A2_ps"], "ci": dif["d_avg_ci95_A2_ps"],
            "vdos": dif["vdos_centre_mobile_THz"]}


def _mtimes(mat: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in mat.rglob("*") if p.is_file()}


def _damage(mat: Path, what: str) -> None:
    if what.startswith("delete the material"):
        shutil.rmtree(mat)
    elif "random bytes" in what:
        path = mat / "md/800K/trajectory.h5"
        path.write_bytes(np.random.default_rng(1).bytes(path.stat().st_size))
    elif what == "truncate fc2.hdf5":
        with open(mat / "fit_ifc/fc2.hdf5", "r+b") as fh:
            fh.truncate(500)
    elif what == "truncate relax.json":
        path = mat / "relax/relax.json"
        path.write_text(path.read_text()[:200])
    elif what.startswith("delete md.json"):
        (mat / "md/800K/md.json").unlink()
        (mat / "diffusion/800K/figures/msd.png").unlink()
    elif what == "delete forces.h5":
        (mat / "forces/forces.h5").unlink()


def test_damaged_or_missing_intermediates_regenerate_exactly_that_material(tmp_path):
    folder = tmp_path / "structures"
    folder.mkdir()
    for mid in [*DAMAGE, "Z"]:
        (folder / f"{mid}.cif").write_text((DEMO / "NaCl.cif").read_text())
    snakemake(tmp_path, "--cores", "2", config=FAST)
    mats = tmp_path / "results/materials"
    before = {mid: _numbers(mats / mid) for mid in [*DAMAGE, "Z"]}
    untouched = _mtimes(mats / "Z")
    for mid, what in DAMAGE.items():
        _damage(mats / mid, what)

    dry = snakemake(tmp_path, "-n", config=FAST)  # reports, removes nothing
    assert "would regenerate" in dry.stderr
    assert (mats / "D/relax/relax.json").exists()
    proc = snakemake(tmp_path, "--cores", "2", config=FAST)
    assert proc.stderr.count("phonion: ") >= len(DAMAGE) - 1  # each damage was named
    status = read_status(tmp_path)
    for mid in [*DAMAGE, "Z"]:
        assert status[mid]["status"] == "ok", (mid, status[mid])
        after = _numbers(mats / mid)
        assert np.array_equal(after.pop("fc2"), before[mid].pop("fc2")), mid
        assert after == before[mid], (mid, DAMAGE.get(mid))  # the same numbers, exactly
    assert _mtimes(mats / "Z") == untouched  # the intact material was not touched
    assert "Nothing to be done" in snakemake(tmp_path, "-n", config=FAST).stdout


KILLER = """#!/bin/bash
# an interpreter whose md job of material 'Victim' is killed, as SLURM or the OOM killer would
case "$*" in *"md --displace"*"/Victim/"*) kill -9 $$ ;; esac
exec {python} "$@"
"""


def test_a_job_killed_outside_phonion_still_gets_a_status_line_and_reruns(tmp_path):
    folder = tmp_path / "structures"
    folder.mkdir()
    for mid in ("Victim", "Other"):
        (folder / f"{mid}.cif").write_text((DEMO / "NaCl.cif").read_text())
    killer = tmp_path / "killer-python"
    killer.write_text(KILLER.format(python=sys.executable))
    killer.chmod(0o755)
    config = {**FAST, "environments": {"rigid_ion": str(killer)}}
    proc = snakemake(tmp_path, "--cores", "2", "--keep-going", config=config, check=False)
    assert proc.returncode != 0  # a job died outside phonion: Snakemake says so
    status = read_status(tmp_path)  # written by the onerror handler
    assert status["Other"]["status"] == "ok" and status["Other"]["stage"] == "arrhenius"
    assert status["Victim"]["stage"] == "md" and status["Victim"]["status"] == "error"
    assert "md/800K/md.log" in status["Victim"]["reason"]
    snakemake(tmp_path, "--cores", "2", config=FAST)  # the normal interpreter: retried
    assert read_status(tmp_path)["Victim"]["status"] == "ok"


def test_one_results_tree_serves_one_campaign(tmp_path):
    from phonion.formats import lock_tree

    folder = tmp_path / "structures"
    folder.mkdir()
    (folder / "NaCl.cif").write_text((DEMO / "NaCl.cif").read_text())
    code = ("import sys, time; sys.path.insert(0, sys.argv[2]); from phonion.formats import "
            "lock_tree; lock_tree(sys.argv[1]); print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "results"),
                               str(ROOT / "src")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = snakemake(tmp_path, "--cores", "1", config=FAST, check=False)
        assert proc.returncode != 0
        assert "is in use by another phonion campaign" in proc.stdout + proc.stderr
        assert f"pid {holder.pid}" in proc.stdout + proc.stderr
    finally:
        holder.kill()
        holder.wait()
    lock_tree(tmp_path / "results")  # free again; and taking it twice in one process is fine
    assert lock_tree(tmp_path / "results")


def test_config_values_never_reach_a_shell_and_paths_with_spaces_work(tmp_path):
    pwned = tmp_path / "PWNED"
    work = tmp_path / "a campaign dir"
    (work / "structures").mkdir(parents=True)
    (work / "structures/NaCl.cif").write_text((DEMO / "NaCl.cif").read_text())
    checkout = tmp_path / "my checkout"  # the workflow itself at a path with a space
    checkout.symlink_to(ROOT)
    # an interpreter path with a command after it is refused when the workflow parses
    bad = {**FAST, "environments": {"rigid_ion": f"{sys.executable}; touch {pwned}"}}
    proc = snakemake(work, "-n", config=bad, check=False, snakefile=checkout / "Snakefile")
    assert proc.returncode != 0 and "is not an interpreter" in proc.stdout + proc.stderr
    # values that do reach jobs travel quoted: inert
    sneaky = {**FAST, "calculator": {"backend": "rigid_ion", "model": f"x'; touch {pwned}; '"},
              "results": f"out $(touch {pwned})"}
    snakemake(work, "--cores", "2", f"out $(touch {pwned})/materials/NaCl/relax/relax.json",
              config=sneaky, snakefile=checkout / "Snakefile")
    relax = json.loads((work / f"out $(touch {pwned})/materials/NaCl/relax/relax.json")
                       .read_text())
    assert relax["status"] == "ok"
    assert relax["provenance"]["parameters"]["model"] == f"x'; touch {pwned}; '"
    assert not pwned.exists()


def test_a_full_disk_is_a_clear_error_and_leaves_no_temporary_file(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        try:  # fill the disk to the last byte
            with open(disk / "filler", "wb") as fh:
                while True:
                    fh.write(b"\0" * 4096)
                    fh.flush()
        except OSError:
            pass
        proc = subprocess.run(
            [sys.executable, "-m", "phonion", "intake", "--id", "NaCl",
             "--source", str(DEMO / "NaCl.cif"), "--settings", "{}",
             "--out", str(disk / "intake.json")],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        assert proc.returncode == 1  # the job fails: nothing could be recorded
        assert "cannot write results" in proc.stderr and "No space left" in proc.stderr
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no temporary file
    finally:
        subprocess.run(["umount", str(disk)])


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        write_json(tmp_path / "r.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o640
    with pytest.raises(ValueError):  # and a NaN never becomes a number in a result
        write_json(tmp_path / "n.json", {"a": float("nan")})
    assert not (tmp_path / "n.json").exists()


def test_a_crash_while_the_status_table_is_written_leaves_the_previous_table(tmp_path):
    """SIGKILL in the middle of writing status.tsv (the campaign aggregate): the table of the
    previous run stays, whole and readable; the next write replaces it."""
    import signal
    import subprocess
    import sys
    import textwrap

    from phonion.status import write_status

    table = tmp_path / "status.tsv"
    write_status(table, [("NaCl", "arrhenius", "ok", ""), ("Na2O", "stability", "failed", "x")])
    before = table.read_text()
    slow = textwrap.dedent(f"""
        import csv, time
        import phonion.status as status

        real = csv.writer

        class Slow:  # the real csv writer, stopped after 10 rows of the new table
            def __init__(self, fh, **kw):
                self.w, self.n, self.fh = real(fh, **kw), 0, fh
            def writerow(self, row):
                self.w.writerow(row)
                self.n += 1
                if self.n == 10:
                    self.fh.flush()
                    print("writing", flush=True)
                    time.sleep(60)

        status.csv.writer = Slow
        status.write_status({str(table)!r}, [(f"m{{i}}", "relax", "ok", "") for i in range(99)])
    """)
    proc = subprocess.Popen([sys.executable, "-c", slow], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert table.read_text() == before
    partial = list(tmp_path.glob(".status.tsv.*.tmp"))  # the killed writer's own file
    assert len(partial) == 1 and partial[0].read_text().count("\n") >= 9
    write_status(table, [("NaCl", "arrhenius", "ok", "")])
    assert table.read_text().splitlines()[1].startswith("NaCl\tarrhenius")
