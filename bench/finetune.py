"""Base vs fine-tuned SevenNet-0 against CP2K on real Na compounds (issue 26, F29).

One campaign through the workflow (``snakemake``, real CP2K at the test cutoff 250/40 Ry,
8-16-atom supercells, 0.03 Å random ± displacements, 16 snapshots each): every material is
validated against DFT; SevenNet-0 is fine-tuned on the DFT snapshots of all but the
unseen material, which the fine-tuned model never sees (a transfer check); every material
is screened again with the fine-tuned model (``finetune.rescreen: [all]``, at the base
relaxed cell). Reported per
material, base and fine-tuned: force RMSE against DFT (held-out snapshots for the training
materials, all snapshots for the unseen one), band RMSE, stability verdict vs DFT, the Na
MSD error at 800 K on the same snapshots (mlp_benchmark) and from the re-screen's own
phonons, the lowest frequency; and the CPU time of the fine-tuning.

    OMP_NUM_THREADS=2 python bench/finetune.py --workdir /tmp/bench_ft \\
        --out bench/finetune.jsonl

Materials (tests/data/structures/MANIFEST.tsv and config/demo cite their sources):
NaCl (demo) for training; NaF (demo) unseen (a transfer check across the anion).
NaO3 ozonide (Imm2) was the first choice and is kept out: its O3- radical is open-shell and
phonion's CP2K protocol is restricted (closed-shell) Kohn-Sham, so the "DFT" is itself wrong
there (measured: SevenNet-0 off by 266 meV/A, DFT lowest mode -7.7 THz). NaYS2 and Na2O were
tried and dropped for time: 10 s and 3.3 s per SCF step of their 12-atom cells at the test
cutoff, ~95 SCF steps per Na2O snapshot: one to two hours of CP2K on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from campaign import run_campaign  # noqa: E402 - bench/ is a folder of scripts

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"NaCl": ROOT / "config/demo/structures/NaCl.cif",
           "NaF": ROOT / "config/demo/structures/NaF.cif"}
UNSEEN = "NaF"


def config(cp2k: str, epochs: int) -> dict:
    return {"calculator": {"backend": "sevenn", "model": "7net-0"},
            "md": {"enabled": False},
            "elastic": {"enabled": False},
            "phonons": {"min_atoms": 8, "max_atoms": 16, "amplitude_A": 0.03,
                        "displacement_scheme": "random", "min_snapshots": 8},
            "dft": {"engine": "cp2k", "validate": sorted(SOURCES),
                    "cp2k": {"cutoff_Ry": 250, "rel_cutoff_Ry": 40, "command": cp2k}},
            "finetune": {"enabled": True, "epochs": epochs, "rescreen": ["all"],
                         "materials": sorted(set(SOURCES) - {UNSEEN})}}


def rows(results: Path) -> list[dict]:
    """One row per material: base vs fine-tuned against DFT."""
    ft = json.loads((results / "campaign/finetune/finetune.json").read_text())
    bench = pd.read_csv(results / "campaign/mlp_benchmark.csv")
    table = pd.read_csv(results / "campaign/table.csv").set_index("id")
    out = []
    for mid in sorted(SOURCES):
        b = bench[bench["id"] == mid].set_index("mlp")
        base_name = next(m for m in b.index if not m.endswith("+finetuned"))
        tuned_name = next(m for m in b.index if m.endswith("+finetuned"))
        val = json.loads((results / f"materials/{mid}/dft_validation/dft_validation.json")
                         .read_text())
        row = {"material": mid, "trained_on": mid != UNSEEN,
               "dft_stable": bool(val["dft_stable"]),
               "dft_lowest_frequency_THz": val.get("dft_lowest_frequency_THz")}
        held = ft["held_out_base"]["rmse_by_material_meV_A"]
        if mid in held:
            row["held_out_force_rmse_base_meV_A"] = held[mid]
            row["held_out_force_rmse_finetuned_meV_A"] = (
                ft["held_out_finetuned"]["rmse_by_material_meV_A"][mid])
        for tag, name in (("base", base_name), ("finetuned", tuned_name)):
            r = b.loc[name]
            row.update({f"force_rmse_{tag}_meV_A": r["force_rmse_meV_A"],
                        f"band_rmse_{tag}_THz": r["band_rmse_THz"],
                        f"stability_agrees_{tag}": bool(r["stability_agrees"]),
                        f"msd_error_{tag}_percent": r["msd_error_percent"]})
        msd_dft = None
        by_t = val.get("by_temperature_K", {}).get("800", {})
        if by_t.get("msd_ratio_mlp_dft") and mid in table.index:
            msd_dft = table.loc[mid, "ph_msd_mobile_mean_800K_A2"] / by_t["msd_ratio_mlp_dft"]
        for tag, rid in (("base", mid), ("rescreen", mid + "+finetuned")):
            if rid in table.index:
                t = table.loc[rid]
                row[f"lowest_frequency_{tag}_THz"] = t.get("lowest_frequency_THz")
                row[f"stable_{tag}"] = t.get("stable")
                if msd_dft:
                    row[f"msd_error_{tag}_own_phonons_percent"] = 100 * (
                        t.get("ph_msd_mobile_mean_800K_A2") / msd_dft - 1)
        out.append(row)
    out.append({"material": "(fine-tuning)", "n_train": ft["n_train"],
                "n_held_out": ft["n_held_out"], "epochs": ft["training"]["epochs"],
                "cpu_seconds": ft["cpu_seconds"],
                "cpu_seconds_per_100_snapshot_epochs":
                    ft["cpu_seconds_per_100_snapshot_epochs"],
                "held_out_rmse_base_meV_A": ft["held_out_base"]["rmse_meV_A"],
                "held_out_rmse_finetuned_meV_A": ft["held_out_finetuned"]["rmse_meV_A"]})
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--out", type=Path, default=ROOT / "bench/finetune.jsonl")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--cores", default="2")
    a = p.parse_args()
    cp2k = shutil.which("cp2k.psmp") or shutil.which("cp2k")
    if cp2k is None:
        sys.exit("no CP2K on PATH (Debian: apt-get install cp2k cp2k-data)")
    rc, wall = run_campaign(a.workdir, config(cp2k, a.epochs), SOURCES.values(), a.cores)
    with a.out.open("a") as fh:
        for row in rows(a.workdir / "results"):
            fh.write(json.dumps({**row, "campaign_wall_s": round(wall), "rc": rc},
                                default=float) + "\n")
    print(pd.DataFrame(rows(a.workdir / "results")).T.to_string())
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
