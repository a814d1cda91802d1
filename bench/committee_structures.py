"""The committee flag over real compounds, through the workflow (issue 26).

One campaign per mobile ion (``--ion``; ``snakemake``, SevenNet-0 as the campaign's model,
``stability_recheck`` with SevenNet-l3i5): the demo's six compounds and the compounds of
docs/relax.md's per-model table from tests/data/structures (sources in MANIFEST.tsv). MD is
off: the flag is about the phonon screen. Printed per material: both verdicts and lowest
frequencies, ``model_dependent_verdict``, the relative force disagreement and
``extrapolating``; compared with docs/relax.md, where each model relaxed and screened the
material on its own.

    OMP_NUM_THREADS=1 python bench/committee_structures.py --ion Na --workdir /tmp/bench_na
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
DEMO = sorted((ROOT / "config/demo/structures").glob("*.cif"))
MORE = {"Na": ("NaYS2", "NaNO3-nitratine", "NaNbO3-R3c", "NaO3-ozonide"),
        "Li": ("Li2O", "Li3N-alpha"), "Mg": ("MgO-periclase", "MgI2", "MgF2-rutile"),
        "Ag": ("Ag3SI-R3", "Ag2Se-naumannite")}  # docs/relax.md's per-model table
COLUMNS = ["stable", "lowest_frequency_THz", "recheck_stable", "recheck_lowest_frequency_THz",
           "model_dependent_verdict", "force_disagreement_relative", "extrapolating"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--out", type=Path, default=ROOT / "bench/committee_structures.jsonl")
    p.add_argument("--cores", default="2")
    p.add_argument("--ion", default="Na", choices=sorted(MORE))
    a = p.parse_args()
    more = [ROOT / "tests/data/structures" / f"{n}.cif" for n in MORE[a.ion]]
    config = {"mobile_ion": a.ion, "calculator": {"backend": "sevenn", "model": "7net-0"},
              "md": {"enabled": False}, "elastic": {"enabled": False},
              "stability_recheck": {"enabled": True, "backend": "sevenn",
                                    "model": "7net-l3i5"}}
    rc, wall = run_campaign(a.workdir, config, (DEMO if a.ion == "Na" else []) + more,
                            a.cores)
    table = pd.read_csv(a.workdir / "results/campaign/table.csv").set_index("id")
    cols = [c for c in COLUMNS if c in table.columns]
    print(table[cols].to_string())
    with a.out.open("a") as fh:
        for mid, r in table[cols].iterrows():
            fh.write(json.dumps({"material": mid, "ion": a.ion, **r.to_dict(),
                                 "campaign_wall_s": round(wall), "rc": rc},
                                default=str) + "\n")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
