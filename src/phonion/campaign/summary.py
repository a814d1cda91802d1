"""``results/campaign/summary.md``: what the campaign found, in numbers."""

from __future__ import annotations


def _fmt(v, spec=".2f") -> str:
    return "–" if v is None else format(v, spec)


def strongest(stats: dict, top: int = 5) -> list[tuple]:
    """(label, descriptor, method, r, low, high, q, n) of the strongest correlations with D,
    by |r|, over every temperature and target."""
    rows = []
    for T, entry in stats.get("versus_d", {}).items():
        for label in ("D_avg", "D_max"):
            for method, per in entry.get(label, {}).items():
                if method == "skipped":
                    continue
                for name, c in per.items():
                    if c.get("r") is not None:
                        rows.append((f"{label} at {T} K", name, method, c["r"], c["ci95_low"],
                                     c["ci95_high"], c["q"], c["n"]))
    return sorted(rows, key=lambda r: -abs(r[3]))[:top]


def summary_markdown(note: dict, stats: dict, clu: dict, model: dict, predictions: list[dict],
                     top: int = 10) -> str:
    """The summary page."""
    lines = ["# Campaign summary", "",
             f"- Materials: {note['n_materials']}; table rows (material × temperature): "
             f"{note['n_rows']}.",
             f"- Diffusion coefficients: {note['n_valid']} valid, {note['n_flagged']} flagged "
             f"(too_short or melted), {note.get('n_not_diffusive', 0)} runs without long-range "
             f"diffusion (upper bound only), {note['n_use_in_fits']} used in fits; "
             f"{note['external_rows']} external rows"
             + (f" ({len(note['external_unmatched'])} external ids not in the campaign: "
                f"{', '.join(note['external_unmatched'])})" if note["external_unmatched"] else "")
             + ".", ""]
    lines += ["## Correlations with D", ""]
    best = strongest(stats)
    if not best:
        per_T = "; ".join(f"{T} K: n valid = {e['n_valid']}" for T, e in
                          stats.get("versus_d", {}).items()) or "no MD temperature"
        lines += [f"Skipped: {per_T}. No diffusion coefficient (runs flagged too_short or "
                  "melted, or without long-range diffusion, give none), so no correlation "
                  "with D is reported.", ""]
    else:
        lines += ["| target | descriptor | method | r | 95 % CI | BH q | n |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {t} | {d} | {m} | {_fmt(r)} | [{_fmt(lo)}, {_fmt(hi)}] | "
                  f"{_fmt(q, '.2g')} | {n} |" for t, d, m, r, lo, hi, q, n in best]
        lines.append("")
    gram = stats.get("correlogram", {})
    names = gram.get("names", [])
    pairs = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            r = gram["pearson"]["r"][i][j]
            if r is not None:
                pairs.append((abs(r), names[i], names[j], r, gram["pearson"]["ci95_low"][i][j],
                              gram["pearson"]["ci95_high"][i][j],
                              gram["pearson"]["significant"][i][j]))
    lines += ["## Descriptor correlogram", ""]
    if pairs:
        lines.append(f"{len(names)} descriptors over {stats.get('n_materials', 0)} materials; "
                     f"{sum(p[6] for p in pairs)} of {len(pairs)} Pearson pairs significant "
                     f"after Benjamini–Hochberg at {stats.get('fdr_alpha', 0.05)}.")
    else:
        lines.append(f"{len(names)} descriptors over {stats.get('n_materials', 0)} materials: "
                     "no pair of descriptors has values for >= 3 materials, no coefficient.")
    for _, a, b, r, lo, hi, s in sorted(pairs, reverse=True)[:5]:
        lines.append(f"- {a} – {b}: r = {_fmt(r)} [{_fmt(lo)}, {_fmt(hi)}]"
                     + (" (significant)" if s else ""))
    lines += ["", "## PCA and k-means", ""]
    if "skipped" in clu:
        lines.append(f"Skipped: {clu['skipped']}.")
    else:
        ev = clu["explained_variance_ratio"]
        lines.append(f"{clu['n_materials']} materials, {len(clu['descriptors'])} descriptors; "
                     f"PC1–PC3 explain {', '.join(f'{100 * v:.0f} %' for v in ev[:3])}; "
                     f"k = {clu['best_k']} by silhouette, cluster sizes "
                     f"{clu.get('cluster_sizes', {})}.")
    lines += ["", "## Model of log10 D", ""]
    if "skipped" in model:
        lines.append(f"Skipped: {model['skipped']}.")
    else:
        lines += ["| feature set | CV R² | CV MAE (log10) | balanced accuracy | top feature |",
                  "|---|---|---|---|---|"]
        for name, res in model["feature_sets"].items():
            if "skipped" in res:
                lines.append(f"| {name} | skipped: {res['skipped']} | | | |")
                continue
            imp = next(iter(res.get("permutation_importance", {})), "–")
            lines.append(f"| {name} | {_fmt(res['cv_r2'])} | {_fmt(res['cv_mae_log10'])} | "
                         f"{_fmt(res.get('cv_balanced_accuracy'))} | {imp} |")
        cands = sorted((p for p in predictions if p["feature_set"] == "all"),
                       key=lambda p: -p["log10_d_pred"])[:top]
        if cands:
            lines += ["", "Top-ranked candidates (all descriptors; no usable D yet):", "",
                      "| id | predicted log10 D (cm²/s) | ± (tree spread) | P(superionic) |",
                      "|---|---|---|---|"]
            lines += [f"| {p['id']} | {_fmt(p['log10_d_pred'])} | {_fmt(p['log10_d_std'])} | "
                      f"{_fmt(p['p_superionic'])} |" for p in cands]
    return "\n".join(lines) + "\n"
