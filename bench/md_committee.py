"""The committee on MD frames (issue 26): how much more two MLPs disagree on the
configurations an MD run visits than on the phonon snapshots, through the workflow.

SevenNet-0 runs the campaign (MD at two temperatures), SevenNet-l3i5 is the second model of
``stability_recheck`` and of ``md_committee`` (``md_frames`` frames per run). Printed per
material and temperature: the relative force disagreement on the MD frames, on the phonon
snapshots, their ratio and ``md_extrapolating``.

    OMP_NUM_THREADS=1 python bench/md_committee.py --workdir /tmp/bench_mdc
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from campaign import run_campaign  # noqa: E402 - bench/ is a folder of scripts

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["temperature_K", "md_duration_ps", "force_disagreement_relative",
           "md_force_disagreement_relative", "md_disagreement_over_snapshots",
           "md_extrapolating", "melted"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--out", type=Path, default=ROOT / "bench/md_committee.jsonl")
    p.add_argument("--materials", nargs="+", default=["NaCl", "Na2S"],
                   help="demo structures (config/demo/structures)")
    p.add_argument("--temperatures", nargs="+", type=int, default=[600, 1200])
    p.add_argument("--steps", type=int, default=800, help="production steps (1.5 fs)")
    p.add_argument("--cores", default="2")
    a = p.parse_args()
    config = {"calculator": {"backend": "sevenn", "model": "7net-0"},
              "md": {"temperatures_K": a.temperatures, "equilibration_steps": 200,
                     "production_steps": a.steps, "interval": 4},
              "elastic": {"enabled": False},
              "stability_recheck": {"enabled": True, "backend": "sevenn",
                                    "model": "7net-l3i5", "md_frames": 10}}
    structures = [ROOT / "config/demo/structures" / f"{m}.cif" for m in a.materials]
    rc, wall = run_campaign(a.workdir, config, structures, a.cores)
    table = pd.read_csv(a.workdir / "results/campaign/table.csv").set_index("id")
    cols = [c for c in COLUMNS if c in table.columns]
    print(table[cols].to_string())
    with a.out.open("a") as fh:
        for mid, r in table[cols].iterrows():
            fh.write(json.dumps({"material": mid, **r.to_dict(), "first": "7net-0",
                                 "second": "7net-l3i5", "production_steps": a.steps,
                                 "campaign_wall_s": round(wall), "rc": rc},
                                default=str) + "\n")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
