"""The finetune stage's contract without DFT (issue 26, F29): which models can be fine-tuned
and why not, the held-out split, the energy labels, the reasons it stops for, a failed DFT
run left out, and a training job killed mid-way that resumes to the same model. The real
acceptance check (CP2K forces, held-out error, MSD vs DFT) is tests/test_finetune_cp2k.py.

The "DFT" forces here are SevenNet-0's scaled by 1.3 on rattled NaCl: a stiffer truth the
training must move towards; only the mechanics are tested with it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk

from phonion import formats
from phonion.finetune import energy_labels, split, tunable
from phonion.formats import ForceSet
from phonion.settings import FinetuneSettings

pytest.importorskip("sevenn")


def _forceset(n: int, seed: int = 0, calc=None) -> ForceSet:
    sc = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    rng = np.random.default_rng(seed)
    u = rng.normal(0, 0.04, (n, len(sc), 3))
    forces, energies = np.zeros_like(u), np.zeros(n)
    if calc is not None:
        for k in range(n):
            at = sc.copy()
            at.positions += u[k]
            at.calc = calc
            forces[k] = 1.3 * at.get_forces()
            energies[k] = -100.0 + 1.3 * at.get_potential_energy()
    return ForceSet(sc, u, forces, np.zeros((len(sc), 3)), energies)


def test_only_single_fidelity_sevenn_and_single_head_mace_are_tunable():
    assert tunable("sevenn") == "" and tunable("mace") == ""
    for backend in ("chgnet", "fairchem", "rigid_ion"):
        assert tunable(backend), backend
    assert "multi-fidelity" in tunable("sevenn", "PBE")
    assert "multi-head" in tunable("mace", "omat")


def test_split_holds_out_per_material_and_never_everything():
    from phonion.finetune import dft_frames

    frames = dft_frames({"A": _forceset(8), "B": _forceset(1), "C": _forceset(2)})
    train, held = split(frames, 0.25, seed=0)
    by = {m: sum(f.info["material"] == m for f in held) for m in "ABC"}
    assert by == {"A": 2, "B": 0, "C": 1}
    assert len(train) + len(held) == 11
    again = split(frames, 0.25, seed=0)[1]
    assert [f.info["snapshot"] for f in again] == [f.info["snapshot"] for f in held]
    assert split(frames, 0.9, seed=1)[0], "something is always left to train on"


def test_energy_labels_keep_dft_differences_and_the_model_zero():
    from phonion.finetune import dft_frames

    fs = _forceset(4)
    fs.energies_eV[:] = [-5000.0, -5000.2, -4999.9, -5000.1]  # another code's zero
    frames = dft_frames({"A": fs})
    base = [-30.0, -30.1, -29.8, -30.3]
    labels = energy_labels(frames, base)
    assert labels.mean() == pytest.approx(np.mean(base))
    np.testing.assert_allclose(np.diff(labels), np.diff(fs.energies_eV))


def test_reasons_to_stop(tmp_path):
    from phonion.finetune import dft_frames, finetune

    s = FinetuneSettings(backend="rigid_ion", model="")
    out, arrays = finetune(dft_frames({"A": _forceset(8)}), s, tmp_path / "m.pth",
                           log=lambda m: None)
    assert out["status"] == "skipped" and "no trainable" in out["reason"] and not arrays
    s = FinetuneSettings(min_snapshots=4)
    out, _ = finetune(dft_frames({"A": _forceset(3)}), s, tmp_path / "m.pth",
                      log=lambda m: None)
    assert out["status"] == "skipped" and "fewer than finetune.min_snapshots" in out["reason"]
    out, _ = finetune(dft_frames({m: _forceset(1) for m in "ABCD"}), s, tmp_path / "m.pth",
                      log=lambda m: None)
    assert out["status"] == "skipped" and "held out" in out["reason"]


def test_failed_dft_runs_are_left_out_with_their_reason(tmp_path):
    from phonion.cli import main

    paths = []
    for mid, status in (("A", "failed"), ("B", "error")):
        d = tmp_path / "results/materials" / mid / "dft_forces"
        d.mkdir(parents=True)
        formats.write_result(d / "dft_forces.json", formats.new_result(
            mid, "dft_forces", status, "SCF not converged in run 003"))
        formats.write_forceset(d / "forces.h5", None, status)
        paths.append(d)
    out = tmp_path / "finetune.json"
    rc = main(["finetune", "--dft-forces", *(str(p / "dft_forces.json") for p in paths),
               "--dft-forceset", *(str(p / "forces.h5") for p in paths),
               "--settings", FinetuneSettings().to_json(), "--model-out",
               str(tmp_path / "model.pth"), "--arrays", str(tmp_path / "ft.h5"),
               "--figures", str(tmp_path / "figures"), "--out", str(out)])
    res = json.loads(out.read_text())
    assert rc == 0 and res["status"] == "skipped"
    assert "dft_forces" in res["reason"]


def test_a_killed_training_resumes_to_the_same_model(tmp_path):
    import torch

    from phonion.calculators import get_calculator, model_file
    from phonion.finetune import dft_frames, train_sevenn

    base = get_calculator("sevenn", "7net-0").calculator
    frames = dft_frames({"NaCl": _forceset(5, calc=base)})
    train, held = frames[:4], frames[4:]
    labels = np.array([f.info["dft_energy"] for f in train])
    s = FinetuneSettings(epochs=3, batch_size=2, learning_rate=1e-3)
    path = model_file("sevenn", "7net-0")

    full = train_sevenn(path, train, labels, held, s, tmp_path / "full.pth",
                        tmp_path / "full.resume", "d", log=lambda m: None)

    class Killed(Exception):
        pass

    def kill_in_epoch_2(message: str) -> None:  # before epoch 2 is saved
        if message.startswith("epoch 2/"):
            raise Killed

    with pytest.raises(Killed):
        train_sevenn(path, train, labels, held, s, tmp_path / "cut.pth",
                     tmp_path / "cut.resume", "d", log=kill_in_epoch_2)
    assert not (tmp_path / "cut.pth").exists() and (tmp_path / "cut.resume").exists()
    said = []
    cut = train_sevenn(path, train, labels, held, s, tmp_path / "cut.pth",
                       tmp_path / "cut.resume", "d", log=said.append)
    assert said[0] == "resumed from epoch 1 of 3" and len(cut) == 3
    a = torch.load(tmp_path / "full.pth", weights_only=False)["model_state_dict"]
    b = torch.load(tmp_path / "cut.pth", weights_only=False)["model_state_dict"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-7)
    assert full[-1]["held_out_force_rmse_meV_A"] < full[0]["held_out_force_rmse_meV_A"] * 1.5
    # a different data digest never resumes a stale state
    said = []
    train_sevenn(path, train, labels, held, s, tmp_path / "other.pth",
                 tmp_path / "cut.resume", "other", log=said.append)
    assert not said[0].startswith("resumed")


def test_the_finetune_job_is_a_gpu_job_and_the_rescreen_waits_for_it(tmp_path):
    """With the SLURM profile and ``calculator.device: cuda`` the finetune job asks for the
    MD jobs' GPUs and reads the device; the ``+finetuned`` chain starts from the base
    material's relaxed structure and the finetune result; the DFT stages are not repeated."""
    import re
    import shutil

    from conftest import DEMO, RIGID, ROOT, snakemake

    (tmp_path / "structures").mkdir()
    for name in ("NaCl", "NaF"):
        shutil.copy(DEMO / f"{name}.cif", tmp_path / "structures")
    config = {**RIGID, "structures": {"folder": "structures"}, "md": {"enabled": False},
              "calculator": {**RIGID["calculator"], "device": "cuda"},
              "slurm": {"md_gpus": 1},
              "dft": {"engine": "cp2k", "validate": ["NaCl"]},
              "finetune": {"enabled": True, "rescreen": ["all"]}}
    out = snakemake(tmp_path, "-n", "-p", "--profile", str(ROOT / "profiles/slurm"),
                    config=config).stdout
    blocks = {}
    for block in re.split(r"\n(?=\s*(?:local)?rule \S+:)", out):
        rule = re.match(r"\s*(?:local)?rule (\S+):", block)
        if rule:
            blocks.setdefault(rule[1], []).append(block)
    (finetune,) = blocks["finetune"]
    assert re.search(r"resources:.*\bgpu=1", finetune)
    assert '--device "$PHONION_MD_DEVICE"' in finetune
    intakes = "".join(blocks["intake_finetuned"])
    assert len(blocks["intake_finetuned"]) == 2
    assert "results/materials/NaCl/relax/POSCAR" in intakes
    assert "results/campaign/finetune/finetune.json" in intakes
    assert len(blocks["dft_forces"]) == 1 and len(blocks["relax"]) == 4
    assert len(blocks["mlp_benchmark"]) == 1 and "finetuned" in blocks["mlp_benchmark"][0]

    # bad configs stop at parse time with the key
    for bad, key in (({"finetune": {"enabled": True}, "dft": {"validate": []}},
                      "dft.validate"),
                     ({"finetune": {"enabled": True, "materials": ["NaF"]}},
                      "finetune.materials"),
                     ({"finetune": {"enabled": True, "rescreen": ["KCl"]}},
                      "finetune.rescreen")):
        proc = snakemake(tmp_path, "-n", config={**config, **{k: {**config.get(k, {}), **v}
                                                             for k, v in bad.items()}},
                         check=False)
        assert proc.returncode != 0 and key in proc.stdout + proc.stderr, key


def test_a_rescreen_of_a_material_that_stopped_is_skipped_with_its_reason(tmp_path):
    """``X+finetuned`` reads X's relaxed structure: when X never relaxed (rejected at intake,
    e.g. no mobile ion), its intake is skipped with X's reason, not 'unreadable POSCAR'."""
    from phonion.cli import main
    from phonion.settings import IntakeSettings

    relax = tmp_path / "relax.json"
    formats.write_result(relax, formats.new_result(
        "LiN3", "relax", "skipped", "no mobile ion Na (contains Li, N)"))
    ft = tmp_path / "finetune.json"
    formats.write_result(ft, formats.new_result("campaign", "finetune", "ok"))
    poscar = tmp_path / "POSCAR"
    formats.write_poscar(poscar, None, "skipped: no mobile ion Na")
    out = tmp_path / "intake.json"
    assert main(["intake", "--id", "LiN3+finetuned", "--source", str(poscar), "--finetune",
                 str(ft), "--base-relax", str(relax), "--settings",
                 IntakeSettings().to_json(), "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["status"] == "skipped" and "no mobile ion Na" in res["reason"]


def test_the_campaign_analyses_count_a_rescreened_material_once():
    import pandas as pd

    from phonion.campaign.summary import material_lines
    from phonion.campaign.table import analysed

    table = pd.DataFrame({"id": ["NaCl", "NaCl+finetuned", "NaF"], "formula": ["NaCl"] * 3,
                          "temperature_K": [float("nan")] * 3, "status": ["ok"] * 3,
                          "status_stage": ["phonon_descriptors"] * 3, "stable": [True] * 3,
                          "ph_msd_mobile_mean_300K_A2": [0.02, 0.03, 0.01]})
    assert list(analysed(table)["id"]) == ["NaCl", "NaF"]
    head = material_lines(table, None, 10)[0]
    assert head.startswith("**2 materials: 2 passed") and "1 screened again" in head


def test_aimd_frames_and_relax_steps_join_the_training_data(tmp_path):
    """finetune.aimd_frames: frames of an AIMD run of a training material, with the forces
    and energies the AIMD printed, join its displaced snapshots as a group of their own
    ("<id>@aimd<T>K"); an AIMD trajectory that kept no forces is left out with the reason.
    finetune.relax_frames: steps of its DFT relaxation, each at its own cell ("<id>@relax")."""
    from ase.build import bulk

    from phonion.calculators import get_calculator
    from phonion.cli import main
    from phonion.finetune import aimd_forcesets, dft_frames, relax_frames

    base = get_calculator("sevenn", "7net-0").calculator
    mat = tmp_path / "results/materials/A"
    (mat / "dft_forces").mkdir(parents=True)
    formats.write_result(mat / "dft_forces/dft_forces.json",
                         formats.new_result("A", "dft_forces", "ok"))
    formats.write_forceset(mat / "dft_forces/forces.h5", _forceset(6, calc=base))
    # an "AIMD" of 12 frames: rattled rock salt with 1.3x the model's forces as DFT
    sc = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    rng = np.random.default_rng(5)
    pos = sc.positions + rng.normal(0, 0.08, (12, len(sc), 3))
    forces, energies = np.zeros_like(pos), np.zeros(12)
    for k in range(12):
        at = sc.copy()
        at.positions = pos[k]
        at.calc = base
        forces[k], energies[k] = 1.3 * at.get_forces(), -100 + at.get_potential_energy()
    traj = {"positions_A": pos, "velocities_A_ps": np.zeros_like(pos), "step": np.arange(12),
            "numbers": sc.numbers, "masses_amu": sc.get_masses(), "cell_A": sc.cell.array,
            "dt_fs": 1.0, "interval": 1, "frame_dt_ps": 0.001, "target_temperature_K": 800.0,
            "potential_energy_eV": energies, "forces_eV_A": forces}
    (mat / "aimd/800K").mkdir(parents=True)
    formats.write_trajectory(mat / "aimd/800K/trajectory.h5", traj)
    sets = aimd_forcesets({"A@aimd800K": mat / "aimd/800K/trajectory.h5"}, 5)
    frames = dft_frames(sets)
    assert len(frames) == 5 and frames[0].info["material"] == "A@aimd800K"
    picked = sets["A@aimd800K"].meta["frames"]
    np.testing.assert_allclose(frames[2].positions, pos[picked[2]], atol=1e-9)
    np.testing.assert_allclose(frames[2].arrays["dft_forces"], forces[picked[2]], atol=1e-5)
    # no forces kept: left out, said why
    (mat / "aimd/900K").mkdir(parents=True)
    formats.write_trajectory(mat / "aimd/900K/trajectory.h5",
                             {k: v for k, v in traj.items() if k != "forces_eV_A"})
    said = []
    assert aimd_forcesets({"A@aimd900K": mat / "aimd/900K/trajectory.h5"}, 5,
                          said.append) == {}
    assert "keeps no DFT forces" in said[0]
    # a DFT cell relaxation of 7 steps (the cell shrinks 3 % → 0): each step at its own cell
    cells = [sc.cell.array * (0.97 + 0.005 * k) for k in range(7)]
    steps = []
    for k, cell in enumerate(cells):
        at = sc.copy()
        at.set_cell(cell, scale_atoms=True)
        at.positions += rng.normal(0, 0.02, at.positions.shape) * (6 - k) / 6
        at.calc = base
        steps.append((at.positions.copy(), 1.3 * at.get_forces(),
                      -90.0 + at.get_potential_energy()))
    (mat / "relax").mkdir()
    formats.write_arrays(mat / "relax/relax_path.h5", {
        "numbers": sc.numbers, "positions_A": np.array([p for p, _, _ in steps]),
        "cells_A": np.array(cells), "forces_eV_A": np.array([f for _, f, _ in steps]),
        "energies_eV": np.array([e for _, _, e in steps]), "steps": np.arange(1, 8)})
    relaxed = relax_frames({"A@relax": mat / "relax/relax_path.h5"}, 4)
    assert len(relaxed) == 4 and {f.info["material"] for f in relaxed} == {"A@relax"}
    np.testing.assert_allclose(relaxed[0].cell[:], cells[0])  # first and last step kept,
    np.testing.assert_allclose(relaxed[-1].cell[:], cells[-1])  # each at its own cell
    np.testing.assert_allclose(relaxed[-1].arrays["dft_forces"], steps[-1][1])
    assert relaxed[1].info["dft_energy"] == pytest.approx(steps[2][2])
    # an MLP relaxation keeps no path (a flagged, empty file): left out, said why
    formats.write_arrays(tmp_path / "empty.h5", {})
    said = []
    assert relax_frames({"B@relax": tmp_path / "empty.h5"}, 4, said.append) == []
    assert "no steps with DFT forces" in said[0]
    # through the command: the AIMD frames and the relaxation steps are part of the
    # training and held-out data
    out = tmp_path / "finetune.json"
    s = FinetuneSettings(epochs=1, batch_size=4, aimd_frames=6, relax_frames=5)
    rc = main(["finetune", "--dft-forces", str(mat / "dft_forces/dft_forces.json"),
               "--dft-forceset", str(mat / "dft_forces/forces.h5"),
               "--aimd-trajectories", str(mat / "aimd/800K/trajectory.h5"),
               str(mat / "aimd/900K/trajectory.h5"),
               "--relax-paths", str(mat / "relax/relax_path.h5"),
               "--settings", s.to_json(), "--model-out", str(tmp_path / "model.pth"),
               "--arrays", str(tmp_path / "ft.h5"), "--figures", str(tmp_path / "figures"),
               "--out", str(out)])
    res = json.loads(out.read_text())
    assert rc == 0 and res["status"] == "ok", res.get("reason")
    assert res["materials"] == ["A", "A@aimd800K", "A@relax"]
    assert res["n_train"] + res["n_held_out"] == 6 + 6 + 5
    assert any(m == "A@aimd800K" for m, _ in res["held_out"])
