"""Fine-tuning on the campaign's own DFT forces, with real CP2K (issue 26, F29): NaCl
screened with SevenNet-0, its displaced 8-atom supercells recomputed by CP2K (test cutoff
250/40 Ry), SevenNet-0 fine-tuned on them with snapshots held out, the fine-tuned model
benchmarked against the same DFT forces, and NaCl screened again with it as
``NaCl+finetuned`` (its DFT work reused: CP2K runs once). Needs Debian's cp2k and
cp2k-data (.ci/run installs them)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from conftest import CP2K as BINARY
from conftest import DEMO, needs_cp2k, snakemake

pytestmark = needs_cp2k


def test_finetune_on_cp2k_forces_moves_the_model_to_dft(tmp_path):
    folder = tmp_path / "structures"
    folder.mkdir()
    shutil.copy(DEMO / "NaCl.cif", folder)
    config = {"calculator": {"backend": "sevenn", "model": "7net-0"},
              "structures": {"folder": "structures"}, "md": {"enabled": False},
              "elastic": {"enabled": False},
              # random ± patterns: enough DFT snapshots to train on and to hold some out
              "phonons": {"min_atoms": 8, "max_atoms": 16, "amplitude_A": 0.03,
                          "displacement_scheme": "random", "min_snapshots": 8},
              "dft": {"engine": "cp2k", "validate": ["NaCl"],
                      "cp2k": {"cutoff_Ry": 250, "rel_cutoff_Ry": 40, "command": BINARY}},
              "finetune": {"enabled": True, "epochs": 30, "rescreen": ["NaCl"]}}
    snakemake(tmp_path, "--cores", "2", config=config, timeout=1800)
    res = tmp_path / "results"
    ft = json.loads((res / "campaign/finetune/finetune.json").read_text())
    assert ft["status"] == "ok", ft["reason"]
    print({k: ft[k] for k in ("n_train", "n_held_out", "held_out_rmse_reduction",
                              "cpu_seconds")},
          ft["held_out_base"]["rmse_meV_A"], ft["held_out_finetuned"]["rmse_meV_A"])
    assert ft["n_held_out"] >= 2 and ft["n_train"] >= 6
    # held-out snapshots (never trained on): the fine-tuned model is ≥ 30 % closer to DFT
    assert ft["held_out_rmse_reduction"] >= 0.30
    assert ft["model_sha256"] and ft["provenance"]["model"]["sha256"] != ft["model_sha256"]

    # the benchmark against the same DFT forces: base (dft_validation) vs fine-tuned
    bench = pd.read_csv(res / "campaign/mlp_benchmark.csv").set_index("mlp")
    print(bench[["force_rmse_meV_A", "msd_error_percent", "stability_agrees"]])
    base_mlp = next(m for m in bench.index if "finetuned" not in m)
    tuned = next(m for m in bench.index if "finetuned" in m)
    assert bench.loc[tuned, "stability_agrees"]
    assert abs(bench.loc[tuned, "msd_error_percent"]) <= 0.5 * abs(
        bench.loc[base_mlp, "msd_error_percent"])

    # NaCl screened again with the fine-tuned model: MLP stages only, at the base model's
    # relaxed cell (where the DFT snapshots are), CP2K ran once
    again = res / "materials/NaCl+finetuned"
    forces = json.loads((again / "forces/forces.json").read_text())
    assert forces["status"] == "ok", forces["reason"]
    assert forces["provenance"]["model"]["sha256"] == ft["model_sha256"]
    assert not (again / "dft_forces").exists()
    dft = json.loads((res / "materials/NaCl/dft_forces/dft_forces.json").read_text())
    assert len(dft["runs_made"]) == dft["n_runs"]
    table = pd.read_csv(res / "campaign/table.csv").set_index("id")
    base, redo = table.loc["NaCl"], table.loc["NaCl+finetuned"]
    assert redo["status"] == "ok" and redo["stable"]
    assert redo["st_volume_per_atom_A3"] == pytest.approx(base["st_volume_per_atom_A3"])
    # the base model's known error against DFT, on the re-screen's own phonons: the Na MSD
    # (base −30 % at 800 K, measured) and the lowest frequency move at least halfway to DFT
    val = json.loads((res / "materials/NaCl/dft_validation/dft_validation.json").read_text())
    msd_dft = base["ph_msd_mobile_mean_800K_A2"] / val["by_temperature_K"]["800"][
        "msd_ratio_mlp_dft"]
    err_base = base["ph_msd_mobile_mean_800K_A2"] - msd_dft
    err_tuned = redo["ph_msd_mobile_mean_800K_A2"] - msd_dft
    print(f"Na MSD 800 K: DFT {msd_dft:.4f}, base {err_base:+.4f}, fine-tuned {err_tuned:+.4f}"
          f" A2; lowest frequency DFT {base['dft_lowest_frequency_THz']:.3f}, base "
          f"{base['lowest_frequency_THz']:.3f}, fine-tuned {redo['lowest_frequency_THz']:.3f}")
    assert abs(err_tuned) <= 0.5 * abs(err_base)
    assert abs(redo["lowest_frequency_THz"] - base["dft_lowest_frequency_THz"]) <= 0.5 * abs(
        base["lowest_frequency_THz"] - base["dft_lowest_frequency_THz"])
    assert (res / "campaign/finetune/figures/finetune.png").stat().st_size > 10_000
    # the campaign statistics count NaCl once; the summary ranks both rows and says why
    stats = json.loads((res / "campaign/statistics.json").read_text())
    assert stats["n_materials"] == 1
    summary = (res / "campaign/summary.md").read_text()
    assert "1 materials" in summary and "1 screened again with the fine-tuned model" in summary
    assert "| NaCl+finetuned |" in summary
