"""The committee flag over real compounds, through the workflow (issue 26).

One campaign per mobile ion (``--ion``; ``snakemake``, SevenNet-0 as the campaign's model,
``stability_recheck`` with SevenNet-l3i5): the demo's six compounds and the compounds of
docs/relax.md's per-model table from tests/data/structures (sources in MANIFEST.tsv). MD is
off: the flag is about the phonon screen. The re-check relaxes the cell with its own model
(``stability_recheck.own_relaxation``, the default). Printed per material: both verdicts and
lowest frequencies (the second model's at its own cell and at the first model's),
``model_dependent_verdict``, the relative force disagreement, ``extrapolating`` and the
ratio of the two models' harmonic mobile-ion MSDs at 800 K; compared with docs/relax.md,
where each model relaxed and screened the material on its own.

    OMP_NUM_THREADS=1 python bench/committee_structures.py --ion Na --workdir /tmp/bench_na

``--first 7net-l3i5 --second 7net-0`` swaps the models: the swapped campaign's own verdict
(relaxed, fitted and screened with l3i5 alone) is what the re-check at l3i5's own cell
should reproduce.
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
           "recheck_shared_cell_lowest_frequency_THz", "model_dependent_verdict",
           "force_disagreement_relative", "extrapolating", "recheck_msd_mobile_ratio_800K",
           "committee_size", "committee_force_std_relative",
           "committee_lowest_frequency_spread_THz"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--out", type=Path, default=ROOT / "bench/committee_structures.jsonl")
    p.add_argument("--cores", default="2")
    p.add_argument("--ion", default="Na", choices=sorted(MORE))
    p.add_argument("--first", default="7net-0", help="the campaign's SevenNet model")
    p.add_argument("--second", default="7net-l3i5", help="the re-check's SevenNet model")
    p.add_argument("--further", nargs="*", default=[],
                   help="more SevenNet models of the committee (model or model:modal)")
    a = p.parse_args()
    more = [ROOT / "tests/data/structures" / f"{n}.cif" for n in MORE[a.ion]]
    config = {"mobile_ion": a.ion, "calculator": {"backend": "sevenn", "model": a.first},
              "md": {"enabled": False}, "elastic": {"enabled": False},
              "stability_recheck": {"enabled": True, "backend": "sevenn",
                                    "model": a.second, "further_models": a.further}}
    rc, wall = run_campaign(a.workdir, config, (DEMO if a.ion == "Na" else []) + more,
                            a.cores)
    table = pd.read_csv(a.workdir / "results/campaign/table.csv").set_index("id")
    cols = [c for c in COLUMNS if c in table.columns]
    print(table[cols].to_string())
    with a.out.open("a") as fh:
        for mid, r in table[cols].iterrows():
            fh.write(json.dumps({"material": mid, "ion": a.ion, "first": a.first,
                                 "second": a.second, "further": a.further,
                                 "own_relaxation": True, **r.to_dict(),
                                 "campaign_wall_s": round(wall), "rc": rc},
                                default=str) + "\n")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
