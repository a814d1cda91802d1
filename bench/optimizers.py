"""Which relaxation converges? FIRE, BFGS, LBFGS, preconditioned LBFGS and two-stage
variants on real structures with one MLP (issue 16): convergence rate, force calls, steps,
symmetry outcome.

    python bench/optimizers.py sevenn 7net-0 [--until HH:MM] [--resume FILE] \
        >> bench/optimizers.jsonl
    python bench/optimizers.py summary bench/optimizers.jsonl

Structures run in a fixed order (the demo set first, then the test set from small to large
primitive cells), every variant on one structure before the next, so a run stopped by
``--until`` (UTC; no new structure is started after it) leaves complete per-structure
comparisons; ``--resume FILE`` skips structures already in FILE. A run whose wall time
exceeds WALL_GUARD_S is stopped and recorded as not converged (``error`` names the guard).

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
# cheap variants first; FIRE two-stage is left out (FIRE is the most expensive single
# stage already, and two CPU cores shared by three people do not allow both)
VARIANTS = {
    "LBFGS": RelaxSettings(optimizer="LBFGS"),
    "BFGS": RelaxSettings(optimizer="BFGS"),
    "PreconLBFGS": RelaxSettings(optimizer="PreconLBFGS"),
    "BFGS two-stage": RelaxSettings(optimizer="BFGS", two_stage=True),
    "FIRE": RelaxSettings(),
}
WALL_GUARD_S = 300.0


class WallGuard(Exception):
    """A run took longer than WALL_GUARD_S."""


class Counting:
    """Wraps an ASE calculator and counts its force evaluations."""

    def __init__(self, calc, wall_guard_s: float | None = None):
        self.calc, self.calls, self.t0 = calc, 0, time.perf_counter()
        original = calc.calculate

        def counted(*args, **kwargs):
            if wall_guard_s and time.perf_counter() - self.t0 > wall_guard_s:
                raise WallGuard(f"wall-time guard: stopped after {wall_guard_s:.0f} s")
            self.calls += 1
            return original(*args, **kwargs)

        calc.calculate = counted


def structures() -> list[Path]:
    """Demo set first, then the test set by primitive-cell size (MANIFEST.tsv)."""
    size = {}
    for folder in FOLDERS:
        manifest = folder / "MANIFEST.tsv"
        if manifest.exists():
            for line in manifest.read_text().splitlines()[1:]:
                cols = line.split("\t")
                size[cols[0]] = int(cols[5])
    return [p for f in FOLDERS
            for p in sorted(f.glob("*.cif"), key=lambda p: (size.get(p.stem, 0), p.stem))]


def _done(resume: str | None) -> set[str]:
    if not resume or not Path(resume).exists():
        return set()
    rows = [json.loads(line) for line in Path(resume).read_text().splitlines() if line]
    return {r["structure"] for r in rows}


def main(backend: str, model: str, until: str | None = None, resume: str | None = None) -> None:
    from phonion.calculators import get_calculator

    loaded = get_calculator(backend, model)
    counter = Counting(loaded.calculator, WALL_GUARD_S)
    done = _done(resume)
    for path in structures():
        if path.stem in done:
            continue
        if until and time.strftime("%H:%M", time.gmtime()) >= until:
            break
        try:
            prim = triage(read_structure(path), IntakeSettings(mobile_ion=_ion(path)))
        except Exception as exc:  # noqa: BLE001
            print(json.dumps({"structure": path.stem, "error": str(exc)}), flush=True)
            continue
        for name, s in VARIANTS.items():
            counter.calls = 0
            t0 = counter.t0 = time.perf_counter()
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
        opts = dict(zip(sys.argv[3::2], sys.argv[4::2], strict=True))
        main(sys.argv[1], sys.argv[2], opts.get("--until"), opts.get("--resume"))
