"""Force evaluations of the displacement step against phonopy's finite displacements, over
every real structure of tests/data/structures with 4-40 atoms in the primitive cell (the
set of bench/fd_vs_fit.py), without any force: the counts follow from the supercell, the
symmetry and the conditioning of the least-squares design alone.

For each structure (as read from its CIF, symmetrized as the relax stage leaves it):

- ``auto``: what phonion's default ``phonons.displacement_scheme`` chooses and how many
  displaced supercells it evaluates (± pairs counted twice);
- ``random``: the conditioned random ± patterns that ``auto`` compares against;
- ``fd``: phonopy's symmetry-reduced finite displacements (0.01 Å, ± where symmetry needs)
  on the same supercell.

Each of the three also needs the undisplaced reference supercell: one evaluation more,
the same for all, not counted here.

    OMP_NUM_THREADS=1 python bench/evaluation_count.py --out bench/evaluation_count.jsonl
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STRUCTURES = ROOT / "tests/data/structures"


def count(sid: str, row: dict) -> dict:
    from phonion.displace import displace
    from phonion.harmonic import phonopy_for
    from phonion.intake import read_structure, triage
    from phonion.settings import DisplaceSettings, IntakeSettings
    from phonion.symmetry import symmetrize

    ion = row["mobile_ions"].split(",")[0]
    prim, _ = symmetrize(triage(read_structure(STRUCTURES / f"{sid}.cif"),
                                IntakeSettings(max_atoms=64, mobile_ion=ion)))
    t0 = time.perf_counter()
    auto = displace(prim, DisplaceSettings())
    ph = phonopy_for(prim, auto.choice, symmetry=True)
    ph.generate_displacements(distance=0.01, is_plusminus="auto")
    P = np.array(auto.choice.supercell_matrix)
    return {"structure": sid, "space_group": row["space_group_symbol"],
            "system": row["crystal_system"], "atoms_primitive": len(prim),
            "atoms_supercell": len(auto.supercell), "non_diagonal": bool(
                np.count_nonzero(P - np.diag(np.diag(P)))),
            "n_free_fc2": auto.n_free.get(2),
            "scheme": auto.scheme, "auto": len(auto.displacements_A),
            "random": auto.n_random_evaluations, "fd": len(ph.displacements),
            "design_conditioning": auto.design_conditioning,
            "wall_s": round(time.perf_counter() - t0, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ids", nargs="*", help="structure ids (default: every 4-40 atom one)")
    p.add_argument("--out", default=str(ROOT / "bench/evaluation_count.jsonl"))
    args = p.parse_args()
    with open(STRUCTURES / "MANIFEST.tsv") as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh, delimiter="\t")}
    ids = args.ids or [i for i, r in rows.items() if 4 <= int(r["atoms_primitive"]) <= 40]
    out = []
    with open(args.out, "w") as fh:
        for sid in ids:
            try:
                line = count(sid, rows[sid])
            except Exception as exc:  # one line per structure, whatever happens
                line = {"structure": sid, "error": f"{type(exc).__name__}: {exc}"[:300]}
            fh.write(json.dumps(line) + "\n")
            fh.flush()
            out.append(line)
            print(json.dumps(line), flush=True)
    done = [r for r in out if "error" not in r]
    ratio = np.array([r["auto"] / r["fd"] for r in done])
    ratio_random = np.array([r["random"] / r["fd"] for r in done if r["random"]])
    print(f"{len(done)} structures: auto/FD evaluations median {np.median(ratio):.2f}, "
          f"max {ratio.max():.2f}; random/FD median {np.median(ratio_random):.2f}, max "
          f"{ratio_random.max():.2f}; finite displacements chosen for "
          f"{sum(r['scheme'] == 'finite_displacement' for r in done)}")


if __name__ == "__main__":
    main()
