"""Which relaxation converges? FIRE, BFGS, LBFGS, preconditioned LBFGS and two-stage
variants on real structures with one MLP (issue 16): convergence rate, force calls, steps,
symmetry outcome.

    python bench/optimizers.py sevenn 7net-0 > bench/optimizers.jsonl
    python bench/optimizers.py summary bench/optimizers.jsonl

Every structure of tests/data/structures and the demo set goes through phonion's intake
(primitive cell) and phonion.relax.relax with the default settings except the optimizer
(fmax 0.005 eV/Å, Fréchet cell filter, 500 steps). One JSON line per (structure, variant).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from phonion.intake import read_structure, triage
from phonion.relax import relax, verdict
from phonion.settings import IntakeSettings, RelaxSettings

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = (ROOT / "config/demo/structures", ROOT / "tests/data/structures")
VARIANTS = {
    "FIRE": RelaxSettings(),
    "BFGS": RelaxSettings(optimizer="BFGS"),
    "LBFGS": RelaxSettings(optimizer="LBFGS"),
    "PreconLBFGS": RelaxSettings(optimizer="PreconLBFGS"),
    "FIRE two-stage": RelaxSettings(two_stage=True),
    "BFGS two-stage": RelaxSettings(optimizer="BFGS", two_stage=True),
}


class Counting:
    """Wraps an ASE calculator and counts its force evaluations."""

    def __init__(self, calc):
        self.calc, self.calls = calc, 0
        original = calc.calculate

        def counted(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        calc.calculate = counted


def structures() -> list[Path]:
    return sorted(p for f in FOLDERS for p in f.glob("*.cif"))


def main(backend: str, model: str) -> None:
    from phonion.calculators import get_calculator

    loaded = get_calculator(backend, model)
    counter = Counting(loaded.calculator)
    for path in structures():
        try:
            prim = triage(read_structure(path), IntakeSettings(mobile_ion=_ion(path)))
        except Exception as exc:  # noqa: BLE001
            print(json.dumps({"structure": path.stem, "error": str(exc)}), flush=True)
            continue
        for name, s in VARIANTS.items():
            counter.calls = 0
            t0 = time.perf_counter()
            try:
                r = relax(prim, loaded.calculator, s, logfile=None)
                status, reason = verdict(r, s)
                row = {"converged": r.converged, "steps": r.n_steps, "status": status,
                       "reason": reason, "symmetry_change": r.summary()["symmetry_change"],
                       "spacegroups": [r.spacegroup_initial[0], r.spacegroup_final[0]],
                       "max_force_eV_A": r.max_force_eV_A, "max_stress_GPa": r.max_stress_GPa,
                       "volume_change_percent": r.summary()["volume_change_percent"]}
            except Exception as exc:  # noqa: BLE001 - a crash of a variant is a result
                row = {"converged": False, "error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps({"structure": path.stem, "atoms": len(prim), "variant": name,
                              "force_calls": counter.calls,
                              "wall_s": round(time.perf_counter() - t0, 1), **row}),
                  flush=True)


def _ion(path: Path) -> str:
    """The mobile ion of a structure: the first of MANIFEST.tsv's mobile_ions column for
    tests/data/structures, Na for the demo set."""
    manifest = path.parent / "MANIFEST.tsv"
    if manifest.exists():
        for line in manifest.read_text().splitlines()[1:]:
            cols = line.split("\t")
            if cols[0] == path.stem:
                return cols[6].split(",")[0]
    return "Na"


def summary(jsonl: str) -> None:
    rows = [json.loads(line) for line in Path(jsonl).read_text().splitlines() if line]
    rows = [r for r in rows if "variant" in r]
    print("| variant | converged | failed (not converged) | symmetry lost | supergroup | "
          "median force calls (converged) | mean force calls (all) |")
    print("|---|---|---|---|---|---|---|")
    for name in VARIANTS:
        rs = [r for r in rows if r["variant"] == name]
        conv = [r for r in rs if r.get("converged")]
        calls = sorted(r["force_calls"] for r in conv)
        print(f"| {name} | {len(conv)}/{len(rs)} | {len(rs) - len(conv)} | "
              f"{sum(r.get('symmetry_change') == 'lost' for r in rs)} | "
              f"{sum(r.get('symmetry_change') == 'supergroup' for r in rs)} | "
              f"{calls[len(calls) // 2] if calls else '-'} | "
              f"{sum(r['force_calls'] for r in rs) / max(len(rs), 1):.0f} |")


if __name__ == "__main__":
    if sys.argv[1] == "summary":
        summary(sys.argv[2])
    else:
        main(sys.argv[1], sys.argv[2])
