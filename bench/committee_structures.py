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
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

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
    folder = a.workdir / "structures"
    folder.mkdir(parents=True, exist_ok=True)
    more = [ROOT / "tests/data/structures" / f"{n}.cif" for n in MORE[a.ion]]
    for src in (DEMO if a.ion == "Na" else []) + more:
        shutil.copy(src, folder / src.name)
    config = {"mobile_ion": a.ion, "calculator": {"backend": "sevenn", "model": "7net-0"},
              "structures": {"folder": "structures"}, "md": {"enabled": False},
              "elastic": {"enabled": False},
              "stability_recheck": {"enabled": True, "backend": "sevenn",
                                    "model": "7net-l3i5"}}
    (a.workdir / "config.yaml").write_text(yaml.safe_dump(config))
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile",
                           str(ROOT / "Snakefile"), "--directory", str(a.workdir),
                           "--configfile", str(a.workdir / "config.yaml"), "--cores", a.cores,
                           "--keep-going"])
    wall = round(time.time() - t0)
    table = pd.read_csv(a.workdir / "results/campaign/table.csv").set_index("id")
    cols = [c for c in COLUMNS if c in table.columns]
    print(table[cols].to_string())
    with a.out.open("a") as fh:
        for mid, r in table[cols].iterrows():
            fh.write(json.dumps({"material": mid, "ion": a.ion, **r.to_dict(),
                                 "campaign_wall_s": wall, "rc": proc.returncode},
                                default=str) + "\n")
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
