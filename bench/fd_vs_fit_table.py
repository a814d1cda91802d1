"""The table of bench/fd_vs_fit.py's JSON lines (markdown, as in docs/phonons.md) and the
counts the issue asks for.

    python bench/fd_vs_fit_table.py bench/fd_vs_fit.jsonl [--compact]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def verdict(line: dict) -> str:
    """phonion's outcome: stable, unstable, fit_artefact, or the stage that stopped it."""
    for stage in ("intake", "relax", "displace", "forces", "fit_ifc"):
        res = line.get(stage)
        if res and res["status"] != "ok":
            return f"{stage} {res['status']}"
    st = line.get("stability")
    return st.get("verdict", "?") if st else "?"


def fmt(x, f="{:.2f}") -> str:
    return "—" if x is None else f.format(x)


def compact(lines: list[dict]) -> None:
    """One row per structure, the models side by side (the table of docs/phonons.md)."""
    models = list(dict.fromkeys(ln["model"] for ln in lines))
    by = {(ln["structure"], ln["model"]): ln for ln in lines}
    print("| structure | SG (system) | supercell | fc2 parameters | patterns | evaluations "
          "phonion / FD | " + " | ".join(f"{m}: phonion / FD (lowest THz) | MSD 300 K"
                                         for m in models) + " |")
    print("|" + "---|" * (6 + 2 * len(models)))
    for sid in dict.fromkeys(ln["structure"] for ln in lines):
        first = by[(sid, models[0])]
        d, fd = first.get("displace", {}), first.get("fd") or {}
        ev = ((first.get("forces") or {}).get("n_force_evaluations") or 0) + (
            (first.get("stability") or {}).get("second_look_evaluations") or 0)
        cells = [sid, f"{first.get('space_group')} ({first.get('system')})",
                 f"{d.get('n_atoms_supercell')} atoms, "
                 f"{'non-diagonal' if first.get('non_diagonal') else 'diagonal'}",
                 str((d.get("n_free_parameters") or {}).get("fc2", "—")),
                 f"{d.get('n_patterns_from_parameter_count')} → {d.get('n_patterns')}",
                 f"{ev} / {fd.get('fd_force_evaluations', '—')}"]
        for m in models:
            ln = by.get((sid, m), {})
            f = ln.get("fd") or {}
            cells.append(f"{verdict(ln)} / {'stable' if f.get('fd_stable') else 'unstable'} "
                         f"({fmt((ln.get('stability') or {}).get('lowest_frequency_THz'))} / "
                         f"{fmt(f.get('fd_lowest_frequency_THz'))})")
            e = f.get("msd_relative_error")
            cells.append(f"{e[0]:+.2%}" if e else "—")
        print("| " + " | ".join(cells) + " |")


def main(path: str) -> None:
    lines = [json.loads(t) for t in Path(path).read_text().splitlines() if t.strip()]
    if "--compact" in sys.argv:
        compact([ln for ln in lines if "error" not in ln])
        return
    print("| structure | model | SG | matrix | n_free | patterns (count → cond.) | "
          "cond. | evals phonion / FD | fit err / CV | phonion | lowest fit / FD THz | "
          "FD | MSD err 300/800 K | free relax |")
    print("|" + "---|" * 14)
    counts = {"n": 0, "differ": 0, "artefact_ok": 0, "msd_bad": 0, "relax_stop": 0,
              "evals_over": 0, "low_sym": 0}
    for ln in lines:
        if "error" in ln:
            print(f"| {ln['structure']} | {ln['model']} | error: {ln['error'][:80]} |")
            continue
        counts["n"] += 1
        d, fi, fd = ln.get("displace", {}), ln.get("fit_ifc", {}), ln.get("fd")
        v = verdict(ln)
        ev = (ln.get("forces", {}).get("n_force_evaluations") or 0) + (
            ln.get("stability", {}).get("second_look_evaluations") or 0)
        fd_v = ("—" if not fd else "stable" if fd["fd_stable"] else "unstable")
        msd = fd.get("msd_relative_error") if fd else None
        free = ln.get("relax_free", {})
        free_s = ("kept" if free.get("symmetry_change") == "none" else
                  f"{free.get('spacegroup_initial')}→{free.get('spacegroup_final')}"
                  if free.get("symmetry_change") else free.get("status", "—"))
        if free.get("symmetry_change") == "lost":
            counts["relax_stop"] += 1
        if fd and v in ("stable", "unstable") and (v == "stable") != fd["fd_stable"]:
            counts["differ"] += 1
        if msd and max(abs(e) for e in msd) > 0.02:
            counts["msd_bad"] += 1
        if fd and ev > fd["fd_force_evaluations"]:
            counts["evals_over"] += 1
        if ln.get("system") in ("monoclinic", "triclinic", "orthorhombic"):
            counts["low_sym"] += 1
        m = d.get("supercell_matrix")
        print(f"| {ln['structure']} | {ln['model']} | {ln.get('space_group')} | "
              f"{'non-diag' if ln.get('non_diagonal') else 'diag'} | "
              f"{(d.get('n_free_parameters') or {}).get('fc2', '—')} | "
              f"{d.get('n_patterns_from_parameter_count', '—')} → {d.get('n_patterns', '—')} | "
              f"{fmt(d.get('design_conditioning'), '{:.1e}')} | "
              f"{ev} / {fd['fd_force_evaluations'] if fd else '—'} | "
              f"{fmt(fi.get('relative_force_error'), '{:.3f}')} / "
              f"{fmt(fi.get('cv_relative_force_error'), '{:.3f}')} | {v} | "
              f"{fmt(ln.get('stability', {}).get('lowest_frequency_THz'))} / "
              f"{fmt(fd['fd_lowest_frequency_THz'] if fd else None)} | {fd_v} | "
              f"{' / '.join(f'{e:+.2%}' for e in msd) if msd else '—'} | {free_s} |"
              + ("" if m else ""))
    print()
    print(json.dumps(counts))


if __name__ == "__main__":
    main(sys.argv[1])
