"""Bodies of the campaign commands (``python -m phonion campaign_<step>``): file formats
glued to the campaign verbs. Each returns the step's result data for
:func:`phonion.runner.run_stage` (material id ``campaign``)."""

from __future__ import annotations

import csv
from pathlib import Path

from ..formats import atomic_path, read_result
from ..runner import Context


def write_rows(path, rows: list[dict], columns: list[str]) -> None:
    """A CSV of ``rows`` (header only when there are none), atomically."""
    cols = list(dict.fromkeys([*columns, *(k for r in rows for k in r)]))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def finite(obj):
    """NaN and infinities → None (JSON null): a campaign result reports a missing number as
    missing, never as a number."""
    import math

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def read_rows(path) -> list[dict]:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:  # a failed analysis leaves an empty file
        return []
    return frame.to_dict("records")


def read_analysis(path) -> dict:
    """An analysis result; one that did not finish (``error``, ``skipped``) comes back
    as ``skipped`` with its stage, status and reason, plus empty statistics, so that the
    figures and the summary report it and go on with the other analyses."""
    res = read_result(path)
    if res.get("status", "ok") == "ok":
        return res
    why = f"{res.get('stage', 'analysis')} {res['status']}: {res.get('reason', '')}"
    return {**res, "skipped": why, "descriptors": [], "versus_d": {},
            "correlogram": {"names": []}}


def table(ctx: Context, results_list: str) -> dict:
    """``results_list``: a text file naming one stage result per line, in pipeline order
    per material (a file, not arguments: a large campaign overflows any command line)."""
    from .table import build_table, collect, read_external, write_table

    s = ctx.settings
    results = [line for line in Path(results_list).read_text().splitlines() if line]
    external = read_external(s.external_d) if s.external_d else None
    frame, note = build_table(collect(results), s.include_flagged, external)
    write_table(frame, ctx.outputs["csv"], ctx.outputs["parquet"])
    ctx.log(f"{note['n_materials']} materials, {note['n_rows']} rows: {note['n_valid']} valid D, "
            f"{note['n_flagged']} flagged, {note['n_use_in_fits']} used in fits")
    return {**note, "columns": list(frame.columns)}


def statistics(ctx: Context, table_path: str) -> dict:
    from .statistics import campaign_statistics
    from .table import descriptor_columns, read_table

    s = ctx.settings
    frame = read_table(table_path)
    out, rows = campaign_statistics(frame, descriptor_columns(frame, s.descriptors),
                                    s.n_bootstrap, s.seed, s.fdr_alpha)
    write_rows(ctx.outputs["csv"], rows, ["x", "y", "method", "temperature_K", "r", "p", "q",
                                          "ci95_low", "ci95_high", "n", "significant"])
    ctx.log(f"{len(out['descriptors'])} descriptors over {out['n_materials']} materials; "
            + "; ".join(f"{T} K: n valid = {e['n_valid']}" for T, e in out["versus_d"].items()))
    return finite(out)


def clustering(ctx: Context, table_path: str) -> dict:
    from .clustering import campaign_clustering
    from .table import descriptor_columns, materials_table, read_table

    s = ctx.settings
    frame = read_table(table_path)
    out, per = campaign_clustering(materials_table(frame),
                                   descriptor_columns(frame, s.descriptors), s.k_range, s.seed)
    write_rows(ctx.outputs["csv"], per, ["id", "cluster", "PC1", "PC2", "PC3"])
    ctx.log(out.get("skipped") or f"k = {out['best_k']}, sizes {out.get('cluster_sizes')}")
    return finite(out)


def model(ctx: Context, table_path: str) -> dict:
    from .model import campaign_model
    from .table import pick_temperature, read_table

    s = ctx.settings
    frame = read_table(table_path)
    out, parity, predictions = campaign_model(
        frame, pick_temperature(frame, s.temperature_K), s.model_min_materials,
        s.superionic_threshold_cm2_s, s.seed, s.cv_splits, s.n_estimators, s.descriptors)
    write_rows(ctx.outputs["parity"], parity,
               ["feature_set", "id", "temperature_K", "log10_d_true", "log10_d_cv"])
    write_rows(ctx.outputs["predictions"], predictions,
               ["feature_set", "id", "log10_d_pred", "log10_d_std", "p_superionic"])
    ctx.log(out.get("skipped") or ", ".join(
        f"{k}: CV R² {v.get('cv_r2', float('nan')):.2f}" for k, v in out["feature_sets"].items()))
    return finite(out)


def figures(ctx: Context, table_path: str, statistics_path: str, clustering_path: str,
            clusters_path: str, model_path: str, parity_path: str) -> dict:
    from .figures import campaign_figures
    from .table import pick_temperature, read_table

    s = ctx.settings
    frame = read_table(table_path)
    T = pick_temperature(frame, s.temperature_K)
    names = campaign_figures(frame, read_analysis(statistics_path),
                             read_analysis(clustering_path),
                             read_rows(clusters_path), read_analysis(model_path),
                             read_rows(parity_path), T, s.colormap, ctx.outputs["figures"])
    ctx.log(f"{len(names)} figures at {T} K")
    return {"temperature_K": T, "n_figures": len(names)}


def summary(ctx: Context, table_result: str, table_path: str, statistics_path: str,
            clustering_path: str, model_path: str, predictions_path: str) -> dict:
    from .summary import summary_markdown
    from .table import read_table

    text = summary_markdown(read_result(table_result), read_result(statistics_path),
                            read_result(clustering_path), read_result(model_path),
                            read_rows(predictions_path), ctx.settings.top_candidates,
                            read_table(table_path))
    with atomic_path(ctx.outputs["summary"]) as tmp:
        Path(tmp).write_text(text)
    return {"lines": text.count("\n")}

