"""End-to-end Snakemake runs on tiny campaigns with the analytic potential."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BROKEN_CIF, DEMO, KCL_POSCAR, PARTIAL_CIF, RIGID, ROOT, read_status, snakemake

pytestmark = pytest.mark.slow


def _planned(workdir, config, python=sys.executable) -> dict[str, set[str]]:
    """rule -> jobs a dry run would (re)run, as 'material' or 'material/T' (or '*')."""
    out = snakemake(workdir, "-n", config=config, python=python).stdout
    planned: dict[str, set[str]] = {}
    for block in re.split(r"\n(?:local)?(?:rule|checkpoint) ", out)[1:]:
        rule = block.split(":", 1)[0].strip()
        found = re.search(r"output: results/materials/([^/]+)/[^/]+/(?:(\d+)K/)?", block)
        job = "*" if not found else found[1] + (f"/{found[2]}" if found[2] else "")
        planned.setdefault(rule, set()).add(job)
    return planned


def test_triage_campaign_relaxes_valid_and_reports_each_bad_one(tmp_path):
    folder = tmp_path / "structures"
    folder.mkdir()
    (folder / "NaCl.cif").write_text((DEMO / "NaCl.cif").read_text())
    (folder / "broken.cif").write_text(BROKEN_CIF)
    (folder / "POSCAR-KCl").write_text(KCL_POSCAR)
    (folder / "NaKCl-disordered.cif").write_text(PARTIAL_CIF)
    (folder / "Na3PS4.cif").write_text((DEMO / "Na3PS4-cubic.cif").read_text())
    (folder / "bad name.cif").write_text((DEMO / "NaCl.cif").read_text())
    dynamics = {"rdf": True, "van_hove": True, "reorientation": True, "tetrahedra": True,
                "r_max_A": 6.0}
    proc = snakemake(tmp_path, "--cores", "2",
                     config={**RIGID, "structures": {"folder": "structures"},
                             "dynamics": dynamics,
                             "phonons": {"fd_check": {"materials": ["NaCl"]}},
                             "stability_recheck": {"enabled": True, "backend": "rigid_ion",
                                                   "model": ""}})
    assert proc.returncode == 0  # bad materials never take the campaign down
    status = read_status(tmp_path)
    assert status["NaCl"]["status"] == "ok"
    assert status["NaCl"]["stage"] == "arrhenius"  # the whole chain ran, MD and analyses
    assert status["broken"]["status"] == "rejected" and "unreadable" in status["broken"]["reason"]
    assert status["POSCAR-KCl"]["reason"].startswith("no mobile ion Na")
    assert "partial occupancy" in status["NaKCl-disordered"]["reason"]
    assert status["Na3PS4"]["stage"] == "relax"
    assert "elements P not supported by rigid_ion" in status["Na3PS4"]["reason"]
    assert "not a safe file name" in status["bad name"]["reason"]
    assert len(status) == 6

    recheck = json.loads((tmp_path / "results/materials/NaCl/stability_recheck/"
                          "stability_recheck.json").read_text())  # a second model's verdict
    assert recheck["status"] == "ok" and recheck["stable"] and recheck["verdicts_agree"]
    assert recheck["second_model"] == "rigid_ion:" and "agrees" in recheck["reason"]
    # the committee of two: the same potential twice disagrees by nothing (issue 26)
    assert recheck["model_dependent_verdict"] is False
    assert recheck["force_disagreement_rms_meV_A"] == pytest.approx(0, abs=1e-6)
    assert recheck["extrapolating"] is False
    # it relaxed the input itself (to the same cell: the same model) and compared the MSDs
    assert recheck["own_relaxation"] and abs(recheck["own_volume_change"]) < 1e-3
    assert all(r == pytest.approx(1, rel=1e-3)
               for r in recheck["msd_mobile_ratio_by_temperature_K"].values())
    # and on frames of every MD run, against the forces the MD kept there
    md_runs = sorted((tmp_path / "results/materials/NaCl/md_committee").glob("*K"))
    assert md_runs
    for folder in md_runs:
        mc = json.loads((folder / "md_committee.json").read_text())
        assert mc["status"] == "ok" and len(mc["frames"]) == 10
        assert mc["force_disagreement_relative"] < 1e-5 and mc["extrapolating"] is False
    fd = json.loads((tmp_path / "results/materials/NaCl/fd_check/fd_check.json").read_text())
    assert fd["status"] == "ok" and fd["agree"] and fd["fd_stable"] and fd["fit_stable"]
    assert fd["fd_force_evaluations"] >= 2 and abs(fd["msd_relative_error"][0]) < 0.02
    assert (tmp_path / "results/materials/NaCl/fd_check/fd_fc2.hdf5").is_file()
    assert not (tmp_path / "results/materials/Na3PS4/fd_check").exists()  # only those asked

    relaxed = json.loads((tmp_path / "results/materials/NaCl/relax/relax.json").read_text())
    assert relaxed["converged"] and relaxed["spacegroup_final"] == "Fm-3m"
    prov = relaxed["provenance"]
    assert prov["packages"]["ase"] and prov["packages"]["numpy"]
    assert prov["model"]["backend"] == "rigid_ion"
    assert prov["parameters"]["fmax_eV_A"] == 0.005
    intake = json.loads((tmp_path / "results/materials/NaCl/intake/intake.json").read_text())
    assert len(intake["source_sha256"]) == 64
    poscar = (tmp_path / "results/materials/NaCl/relax/POSCAR").read_text()
    assert "Na" in poscar and "Cl" in poscar

    mat = tmp_path / "results/materials/NaCl"
    stability = json.loads((mat / "stability/stability.json").read_text())
    assert stability["stable"] and stability["status"] == "ok"
    phonons = json.loads((mat / "phonon_descriptors/phonon_descriptors.json").read_text())
    assert phonons["by_temperature_K"]["800"]["msd_mobile_mean_A2"] > 0
    md = json.loads((mat / "md/800K/md.json").read_text())
    assert md["initial_state"] == "harmonic"  # from the fc2 the phonon stage fitted
    diffusion = json.loads((mat / "diffusion/800K/diffusion.json").read_text())
    assert diffusion["status"] == "ok" and diffusion["n_frames"] == 25
    assert diffusion["too_short"] and not diffusion["diffusive"]  # a plateau is not a D
    assert diffusion["d_avg_A2_ps"] is None and diffusion["d_avg_upper_bound_A2_ps"] > 0
    assert "not resolved in" in diffusion["reason"]  # 0.15 ps resolve nothing (issue 25)
    assert diffusion["diffusion_class"] == "not_resolved"
    assert diffusion["vdos_centre_mobile_THz"] > 0
    dyn = json.loads((mat / "dynamics/800K/dynamics.json").read_text())
    assert dyn["analyses"] == ["rdf", "van_hove", "reorientation", "tetrahedra"]
    assert dyn["polyanions"] == []  # rock salt has no rotating units
    assert dyn["rdf_first_peak_Na-Cl_A"] == pytest.approx(2.8, abs=0.2)
    for name in ("stability/figures/bands", "phonon_descriptors/figures/msd_modes",
                 "phonon_descriptors/figures/coupling_pdos", "diffusion/800K/figures/msd",
                 "diffusion/800K/figures/vdos", "dynamics/800K/figures/dynamics",
                 "arrhenius/figures/arrhenius"):
        for ext in ("png", "svg"):
            assert (mat / f"{name}.{ext}").stat().st_size > 1000, name
    # every stage of a material stopped by relax still has its result: skipped, at once
    for stage in ("displace", "forces", "fit_ifc", "stability", "phonon_descriptors"):
        res = json.loads((tmp_path / f"results/materials/Na3PS4/{stage}/{stage}.json")
                         .read_text())
        assert res["status"] == "skipped" and res["reason"] == "relax: rejected", stage
        assert res["wall_time_s"] < 1.0 and res["provenance"]["model"] == {}
    assert not list((tmp_path / "results/materials/Na3PS4/stability/figures").glob("*.png"))
    fit = json.loads((mat / "fit_ifc/fit_ifc.json").read_text())
    assert fit["acoustic_sum_rule_residual_eV_A2"] < 1e-10
    import phonopy

    fc2 = phonopy.file_IO.read_force_constants_hdf5(str(mat / "fit_ifc/fc2.hdf5"))
    assert fc2.shape[0] == fc2.shape[1] == json.loads(
        (mat / "displace/displace.json").read_text())["n_atoms_supercell"]

    # the report (README): every material figure and the campaign's figures and summary
    snakemake(tmp_path, "--report", "results/report.zip")
    import zipfile

    names = {Path(n).name for n in zipfile.ZipFile(tmp_path / "results/report.zip").namelist()}
    assert {"report.html", "summary.md", "bands.png", "msd_modes.png", "vdos.png",
            "arrhenius.png", "correlogram_pearson.png", "pca_biplot.png"} <= names, names


def test_only_md_jobs_ask_for_a_gpu(campaign):
    """Issue 24: with ``calculator.device: cuda`` and the SLURM profile, a dry run shows the
    MD jobs alone asking for GPUs and reading the device; relax, forces, elastic and the
    rest run on the CPU nodes they are sent to."""
    config = {**RIGID, "structures": {"folder": "structures"},
              "calculator": {**RIGID["calculator"], "device": "cuda"},
              "phonons": {"temperatures_K": [800]}, "md": {**RIGID["md"],
                                                          "temperatures_K": [600, 800]},
              "slurm": {"md_gpus": 1}}
    out = snakemake(campaign, "-n", "-p", "--profile", str(ROOT / "profiles/slurm"),
                    config=config).stdout
    blocks = re.split(r"\n(?=\s*(?:local)?rule \S+:)", out)  # grouped jobs are indented
    gpu_rules, device_rules = [], []
    for block in blocks:
        rule = re.match(r"\s*(?:local)?rule (\S+):", block)
        if not rule:
            continue
        if re.search(r"resources:.*\bgpu=1", block):
            gpu_rules.append(rule[1])
    for command in re.findall(r"Shell command: (.*)", out):
        if "--device" in command:
            device_rules.append(command.split(" -m phonion ")[1].split()[0])
    assert sorted(gpu_rules) == ["md"] * 4, gpu_rules  # 2 materials x 2 temperatures
    assert sorted(device_rules) == ["md"] * 4, device_rules
    assert out.count('--device "$PHONION_MD_DEVICE"') == 4


#: The campaign analysis reruns after any material result changes (issue 13).
CAMPAIGN = {r: {"*"} for r in ("campaign_inputs", "campaign_table", "campaign_statistics",
                               "campaign_clustering", "campaign_model", "campaign_figures",
                               "campaign_summary")}


def test_reruns_touch_only_the_changed_material(campaign):
    config = {**RIGID, "structures": {"folder": "structures"},
              "phonons": {"min_atoms": 32, "temperatures_K": [800]}}
    snakemake(campaign, "--cores", "2", config=config)
    assert _planned(campaign, config) == {}
    status = read_status(campaign)
    assert status["NaCl"]["status"] == "ok" and status["Na2O"]["stage"] == "stability"

    # Snakemake started through another interpreter path: nothing reruns
    other = str(Path(sys.executable).with_name("python3"))
    assert other != sys.executable and _planned(campaign, config, python=other) == {}
    # ... or with MD on a GPU: the device is an execution detail
    gpu = {**config, "calculator": {**config["calculator"], "device": "cuda"}}
    assert _planned(campaign, gpu) == {}

    # a descriptor-only key reruns the descriptors (of both materials: the unstable one
    # only writes 'skipped' again) and the status, never displacements, forces or MD
    edited = {**config, "phonons": {**config["phonons"], "temperatures_K": [300, 800]}}
    assert _planned(campaign, edited) == {
        "phonon_descriptors": {"NaCl", "Na2O"}, "status": {"*"}, "all": {"*"}, **CAMPAIGN}

    # a diffusion key reruns the analysis and what reads it, no MD
    edited = {**config, "diffusion": {"n_blocks": 4}}
    assert _planned(campaign, edited) == {
        "diffusion": {"NaCl/800", "Na2O/800"}, "arrhenius": {"NaCl", "Na2O"},
        "status": {"*"}, "all": {"*"}, **CAMPAIGN}

    # a second MD temperature runs only that temperature's MD and analysis
    edited = {**config, "md": {**config["md"], "temperatures_K": [800, 900]}}
    assert _planned(campaign, edited) == {
        "md": {"NaCl/900", "Na2O/900"}, "diffusion": {"NaCl/900", "Na2O/900"},
        "arrhenius": {"NaCl", "Na2O"}, "status": {"*"}, "all": {"*"}, **CAMPAIGN}

    # editing one structure file reruns that material's chain and the aggregate only
    time.sleep(1.1)
    cif = campaign / "structures" / "NaCl.cif"
    cif.write_text(cif.read_text().replace("5.6402", "5.6500"))
    planned = _planned(campaign, config)
    assert {m for jobs in planned.values() for m in jobs} == {"NaCl", "NaCl/800", "*"}
    assert planned["intake"] == {"NaCl"} and planned["md"] == {"NaCl/800"}
    snakemake(campaign, "--cores", "2", config=config)

    # a per-material relax setting reruns that material's chain only
    config["overrides"] = {"Na2O": {"relax": {"fmax_eV_A": 0.002}}}
    planned = _planned(campaign, config)
    assert "intake" not in planned and planned["relax"] == {"Na2O"}
    assert {m for jobs in planned.values() for m in jobs} == {"Na2O", "Na2O/800", "*"}
    assert planned["forces"] == {"Na2O"} and planned["md"] == {"Na2O/800"}
    snakemake(campaign, "--cores", "2", config=config)
    relax = json.loads((campaign / "results/materials/Na2O/relax/relax.json").read_text())
    assert relax["provenance"]["parameters"]["fmax_eV_A"] == 0.002
    assert _planned(campaign, config) == {}


def test_lint_and_default_dry_run_are_clean():
    base = [sys.executable, "-m", "snakemake", "-d", str(ROOT), "-s", str(ROOT / "Snakefile")]
    lint = subprocess.run([*base, "--lint"], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Congratulations" in lint.stdout + lint.stderr
    dry = subprocess.run([*base, "-n", "--quiet"], capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
