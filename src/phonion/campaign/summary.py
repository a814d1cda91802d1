"""``results/campaign/summary.md``: what the campaign found, material by material first,
then the statistics.

The first screen answers a user's questions in order: how many materials got through the
dynamic-stability screen and where the others stopped; which materials look most promising
(by a measured or simulated D where there is one, else by the harmonic mobile-ion MSD, the
leading phonon descriptor of seed 000, Fig. 2); which verdicts carry a caveat (finite
displacements disagree with the fit, a fit artefact, a diffusion run too short or melted).
The statistics follow, with correlations between variants of one quantity (mean and max,
Voigt/Reuss/Hill, two temperatures: :mod:`.families`) grouped instead of listed as
findings. An analysis that did not run says why in its section; it never hides the others.
"""

from __future__ import annotations

import math

from ..settings_dft import rescreened
from .families import family


def _fmt(v, spec=".2f") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return format(v, spec)


def _num(v) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def strongest(stats: dict, top: int = 5) -> list[tuple]:
    """(label, descriptor, method, r, low, high, q, n, n_variants) of the strongest
    correlations with D by |r|, over every temperature and target: one row per descriptor
    family and target (the strongest variant; ``n_variants`` counts the family's others)."""
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
    best: dict[tuple, list] = {}
    for row in sorted(rows, key=lambda r: -abs(r[3])):
        key = (row[0], family(row[1]), row[2])
        if key in best:
            best[key][-1] += 1
        else:
            best[key] = [*row, 0]
    return [tuple(v) for v in list(best.values())[:top]]


def _msd_column(columns) -> str | None:
    """The lowest-temperature mean mobile-ion MSD column (the room-temperature one in a
    default campaign)."""
    cols = [c for c in columns if c.startswith("ph_msd_mobile_mean_") and c.endswith("K_A2")]

    def temp(c: str) -> float:
        return float(c[len("ph_msd_mobile_mean_"):-len("K_A2")])

    return min(cols, key=temp) if cols else None


def _caveats(row) -> str:
    notes = []
    if rescreened(row.get("id", "")):
        notes.append("screened with the model fine-tuned on the campaign's DFT forces, at "
                     "the base model's relaxed cell (docs/finetune.md)")
    if row.get("fd_check_agree") is False or str(row.get("fd_check_agree")) == "False":
        notes.append("finite displacements disagree with the fit")
    if row.get("stability_verdict") == "fit_artefact":
        notes.append("imaginary modes are a fit artefact")
    if row.get("mlp_verdict_check") in ("confirmed", "contradicted"):
        notes.append(f"MLP verdict {row['mlp_verdict_check']} by DFT")
    if row.get("model_dependent_verdict") is True or str(
            row.get("model_dependent_verdict")) == "True":
        notes.append(f"verdict depends on the model ({row.get('recheck_model', '')} "
                     "says otherwise)")
    if str(row.get("extrapolating")) == "True":
        notes.append("the models extrapolate here (forces differ by "
                     f"{100 * float(row.get('force_disagreement_relative', 0)):.0f} %)")
    if str(row.get("md_extrapolating")) == "True":
        notes.append("the models extrapolate in this MD (forces differ by "
                     f"{100 * float(row.get('md_force_disagreement_relative', 0)):.0f} % on its "
                     "frames)")
    ratio = _num(row.get("msd_md_over_harmonic"))
    if ratio is not None:  # seed 000 §3.1
        notes.append(f"MD vibration {ratio:.2f}× the harmonic MSD of the same modes")
    overlap = _num(row.get("aimd_vdos_overlap_mobile"))
    if overlap is not None:  # seed 002's MLMD against AIMD
        notes.append(f"MLP MD vs AIMD: mobile-ion VDOS overlap {overlap:.2f}, G_s overlap "
                     f"{_fmt(_num(row.get('aimd_van_hove_self_overlap')))}, largest g(r) "
                     f"RMS difference {_fmt(_num(row.get('aimd_rdf_rms_difference_max')))}")
    dim = _num(row.get("density_dimensionality"))
    if dim is not None:  # the dynamics stage's density (phonion.density)
        barrier = _num(row.get(f"percolation_barrier_{int(dim)}d_eV")) if dim else None
        notes.append(f"mobile-ion paths {int(dim)}D in the MD at "
                     f"{_fmt(_num(row.get('temperature_K')), 'g')} K"
                     + (f" (percolation barrier {barrier:.2f} eV)" if barrier is not None
                        else ""))
    for flag in ("too_short", "melted"):
        if str(row.get(flag)) == "True":
            notes.append(flag.replace("_", " "))
    if row.get("diffusion_class") == "not_diffusing":
        notes.append("does not diffuse (D upper bound below diffusion.resolution_cm2_s)")
    elif str(row.get("diffusive")) == "False":
        need = row.get("run_needed_ps")
        notes.append("D not resolved in this run length (upper bound)" + (
            f"; needs a run of ≳{need:.2g} ps" if isinstance(need, float)
            and need == need else ""))
    return "; ".join(notes)


def material_lines(table, T: float | None, top: int) -> list[str]:
    """The screen outcome and the ranked materials (``table``: the campaign table)."""
    if table is None or table.empty:
        return ["No material in the table.", ""]
    own = table[table["d_source"].fillna("md") != "external"] if "d_source" in table else table
    mats = own.drop_duplicates("id")
    # the outcome counts the campaign model's screen; re-screens (fine-tuned model) are ranked
    variant = mats["id"].map(rescreened)
    base = mats[~variant]
    stage = base["status_stage"].fillna("")
    status = base["status"].fillna("")
    unstable = base[(stage == "stability") & (status == "failed")]
    passed = base[base["stable"].astype(str) == "True"] if "stable" in base else base.iloc[:0]
    stopped = base[~base["id"].isin(passed["id"]) & ~base["id"].isin(unstable["id"])]
    redo = (f" ({int(variant.sum())} screened again with the fine-tuned model: ranked below)"
            if variant.any() else "")
    lines = [f"**{len(base)} materials: {len(passed)} passed the dynamic-stability screen, "
             f"{len(unstable)} are dynamically unstable under the model, {len(stopped)} "
             f"stopped before the screen{redo}.**", ""]
    if len(stopped):
        where = stopped.groupby(stage[stopped.index]).size()
        lines += ["Stopped before the screen: " + "; ".join(
            f"{s or 'unknown'} ({k}: {', '.join(stopped['id'][stage[stopped.index] == s])})"
            for s, k in where.items()) + ".", ""]
    msd = _msd_column(table.columns)
    at_T = table[table["temperature_K"] == T] if T is not None else table.iloc[:0]
    d_by_id = {r["id"]: _num(r.get("d_avg_cm2_s")) for _, r in at_T.iterrows()
               if str(r.get("use_in_fits")) == "True"}
    ranked = sorted(
        mats.to_dict("records"),
        key=lambda r: (d_by_id.get(r["id"]) is None,
                       -(d_by_id.get(r["id"]) or 0.0),
                       str(r.get("stable")) != "True",
                       -(_num(r.get(msd)) or -1.0) if msd else 0.0))
    how = (f"ranked by D at {T:g} K where it is valid, then by the harmonic mobile-ion MSD"
           f" ({msd}; larger = softer mobile-ion vibrations, seed 000 Fig. 2)"
           if T is not None else f"ranked by the harmonic mobile-ion MSD ({msd})")
    lines += [f"## Materials ({how}; first {min(top, len(mats))} of {len(mats)})", "",
              f"| material | formula | outcome | lowest frequency (THz) | mobile-ion MSD"
              f"{' at ' + msd.split('_')[-2].replace('K', ' K') if msd else ''} "
              f"(Å²) | D at {_fmt(T, 'g')} K (cm²/s) | Ea (eV) | caveats |",
              "|---|---|---|---|---|---|---|---|"]
    for r in ranked[:top]:
        outcome = ("stable" if str(r.get("stable")) == "True" else "")
        if r.get("status_stage") == "stability" and r.get("status") == "failed":
            outcome = "dynamically unstable"
        elif r.get("status") != "ok":
            outcome += f"{', ' if outcome else ''}{r.get('status')} at {r.get('status_stage')}"
        d = d_by_id.get(r["id"])
        lines.append(f"| {r['id']} | {r.get('formula', '')} | {outcome} | "
                     f"{_fmt(_num(r.get('lowest_frequency_THz')))} | "
                     f"{_fmt(_num(r.get(msd)) if msd else None, '.3f')} | "
                     f"{_fmt(d, '.2e')} | {_fmt(_num(r.get('ea_eV')))} | {_caveats(r)} |")
    lines.append("")
    return lines


def _analysis_failed(result: dict) -> str | None:
    """The reason an analysis result holds nothing to report, or None."""
    if result.get("status", "ok") != "ok":
        return f"{result.get('stage', 'analysis')} {result['status']}: {result.get('reason')}"
    return None


def summary_markdown(note: dict, stats: dict, clu: dict, model: dict, predictions: list[dict],
                     top: int = 10, table=None) -> str:
    """The summary page. ``table``: the campaign table (one row per material × T)."""
    from .table import pick_temperature

    T = pick_temperature(table) if table is not None and not table.empty else None
    lines = ["# Campaign summary", ""]
    lines += material_lines(table, T, top)
    lines += ["## Diffusion", "",
              f"- Table rows (material × temperature): {note['n_rows']}.",
              f"- Diffusion coefficients: {note['n_valid']} valid, {note['n_flagged']} flagged "
              f"(too_short or melted), {note.get('n_not_diffusive', 0)} runs whose D is not "
              f"resolved or that do not diffuse (upper bound only), "
              f"{note['n_use_in_fits']} used in fits; "
              f"{note['external_rows']} external rows"
              + (f" ({len(note['external_unmatched'])} external ids not in the campaign: "
                 f"{', '.join(note['external_unmatched'])})" if note["external_unmatched"]
                 else "") + ".", ""]
    lines += ["## Correlations with D", ""]
    failed = _analysis_failed(stats)
    best = [] if failed else strongest(stats)
    if failed:
        lines += [f"Not available: {failed}.", ""]
    elif not best:
        per_T = "; ".join(f"{T} K: n valid = {e['n_valid']}" for T, e in
                          stats.get("versus_d", {}).items()) or "no MD temperature"
        lines += [f"Skipped: {per_T}. No diffusion coefficient (runs flagged too_short or "
                  "melted, or whose D is not resolved, give none), so no correlation "
                  "with D is reported.", ""]
    else:
        lines += ["The strongest descriptor of each quantity (other averages or temperatures "
                  "of it counted, not listed):", "",
                  "| target | descriptor | method | r | 95 % CI | BH q | n | variants |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {t} | {d} | {m} | {_fmt(r)} | [{_fmt(lo)}, {_fmt(hi)}] | "
                  f"{_fmt(q, '.2g')} | {n} | {v} |" for t, d, m, r, lo, hi, q, n, v in best]
        lines.append("")
    lines += _correlogram_lines(stats, failed)
    lines += ["", "## PCA and k-means", ""]
    failed = _analysis_failed(clu)
    if failed or "skipped" in clu:
        lines.append(f"{'Not available' if failed else 'Skipped'}: "
                     f"{failed or clu['skipped']}.")
    else:
        ev = clu["explained_variance_ratio"]
        lines.append(f"{clu['n_materials']} materials, {len(clu['descriptors'])} descriptors; "
                     f"PC1–PC3 explain {', '.join(f'{100 * v:.0f} %' for v in ev[:3])}; "
                     f"k = {clu['best_k']} by silhouette, cluster sizes "
                     f"{clu.get('cluster_sizes', {})}.")
    lines += ["", "## Model of log10 D", ""]
    lines += _model_lines(model, predictions, top)
    return "\n".join(lines) + "\n"


def _correlogram_lines(stats: dict, failed: str | None) -> list[str]:
    lines = ["## Descriptor correlogram", ""]
    if failed:
        return [*lines, f"Not available: {failed}."]
    gram = stats.get("correlogram", {})
    names = gram.get("names", [])
    pairs, same = [], 0
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            r = gram["pearson"]["r"][i][j]
            if r is None:
                continue
            if family(names[i]) == family(names[j]):
                same += 1  # two variants of one quantity: correlated by construction
                continue
            pairs.append((abs(r), names[i], names[j], r, gram["pearson"]["ci95_low"][i][j],
                          gram["pearson"]["ci95_high"][i][j],
                          gram["pearson"]["significant"][i][j], gram["pearson"]["n"][i][j]))
    if pairs:
        lines.append(f"{len(names)} descriptors over {stats.get('n_materials', 0)} materials; "
                     f"{sum(p[6] for p in pairs)} of {len(pairs)} Pearson pairs of different "
                     f"quantities significant after Benjamini–Hochberg at "
                     f"{stats.get('fdr_alpha', 0.05)} ({same} pairs of variants of one "
                     "quantity not counted). Strongest:")
    else:
        lines.append(f"{len(names)} descriptors over {stats.get('n_materials', 0)} materials: "
                     "no pair of different quantities has values for >= 3 materials.")
    shown: set[frozenset] = set()  # one pair of quantities once (its strongest variants)
    for _, a, b, r, lo, hi, sig, n in sorted(pairs, key=lambda p: (not p[6], -p[0])):
        key = frozenset((family(a), family(b)))
        if key in shown:
            continue
        shown.add(key)
        lines.append(f"- {a} – {b}: r = {_fmt(r)} [{_fmt(lo)}, {_fmt(hi)}], n = {_fmt(n, '.0f')}"
                     + (" (significant)" if sig else " (not significant)"))
        if len(shown) == 5:
            break
    return lines


def _rotation_lines(model: dict) -> list[str]:
    """Seed 001's polyanion-rotation classifier, when some MD run had polyanions."""
    rot = model.get("rotation_classifier") or {}
    counts = rot.get("n_by_category")
    if not counts:
        return []
    n = ", ".join(f"{v} in category {k}" for k, v in counts.items())
    if "skipped" in rot:
        return ["", f"Polyanion rotation (seed 001 categories: {n}): classifier skipped: "
                f"{rot['skipped']}."]
    top = ", ".join(list(rot["mean_abs_shap"])[:3])
    return ["", f"Polyanion rotation (seed 001 categories: {n}): logistic regression on "
            f"{len(rot['features'])} structure/elastic descriptors, CV F1 "
            f"{_fmt(rot['cv_f1'])}, balanced accuracy {_fmt(rot['cv_balanced_accuracy'])}; "
            f"strongest by mean |SHAP|: {top}."]


def _model_lines(model: dict, predictions: list[dict], top: int) -> list[str]:
    failed = _analysis_failed(model)
    if failed or "skipped" in model:
        return [f"{'Not available' if failed else 'Skipped'}: {failed or model['skipped']}."
                ] + ([] if failed else _rotation_lines(model))
    lines = ["| feature set | CV R² | CV MAE (log10) | balanced accuracy | top feature |",
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
    return lines + _rotation_lines(model)
