"""Commands of the campaign analysis (material id ``campaign``): the table, statistics,
PCA + k-means, the model of D, the figures and the summary. Only the table gates the
figures and the summary: an analysis that failed is reported there, the others still are."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..formats import atomic_path, read_result
from ..runner import Context, run_stage
from .common import settings_of


def campaign_table(a: argparse.Namespace) -> int:
    """``--results``: a text file naming one stage result per line, in pipeline order per
    material (a file, not arguments: a large campaign overflows any command line)."""

    def body(ctx: Context) -> dict:
        from ..campaign.table import build_table, collect, read_external, write_table

        s = ctx.settings
        results = [line for line in Path(a.results).read_text().splitlines() if line]
        external = read_external(s.external_d) if s.external_d else None
        frame, note = build_table(collect(results), s.include_flagged, external)
        write_table(frame, ctx.outputs["csv"], ctx.outputs["parquet"])
        ctx.log(f"{note['n_materials']} materials, {note['n_rows']} rows: {note['n_valid']} "
                f"valid D, {note['n_flagged']} flagged, {note['n_use_in_fits']} used in fits")
        return {**note, "columns": list(frame.columns)}

    return run_stage("campaign_table", body, a.out, settings=settings_of(a),
                     outputs={"csv": a.csv, "parquet": a.parquet}, mid="campaign")


def campaign_statistics(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from ..campaign.io import finite, write_rows
        from ..campaign.statistics import campaign_statistics as correlate
        from ..campaign.table import analysed, descriptor_columns, read_table

        s = ctx.settings
        frame = analysed(read_table(a.table))
        out, rows = correlate(frame, descriptor_columns(frame, s.descriptors), s)
        write_rows(ctx.outputs["csv"], rows, ["x", "y", "method", "temperature_K", "r", "p",
                                              "q", "ci95_low", "ci95_high", "n", "significant"])
        ctx.log(f"{len(out['descriptors'])} descriptors over {out['n_materials']} materials; "
                + "; ".join(f"{T} K: n valid = {e['n_valid']}"
                            for T, e in out["versus_d"].items()))
        return finite(out)

    return run_stage("campaign_statistics", body, a.out, {"table": a.table_result},
                     settings_of(a), {"csv": a.csv})


def campaign_clustering(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from ..campaign.clustering import campaign_clustering as cluster
        from ..campaign.io import finite, write_rows
        from ..campaign.table import (
            analysed,
            descriptor_columns,
            materials_table,
            per_material,
            read_table,
        )

        s = ctx.settings
        frame = analysed(read_table(a.table))
        out, per = cluster(materials_table(frame),
                           per_material(descriptor_columns(frame, s.descriptors)), s)
        write_rows(ctx.outputs["csv"], per, ["id", "cluster", "PC1", "PC2", "PC3"])
        ctx.log(out.get("skipped") or f"k = {out['best_k']}, sizes {out.get('cluster_sizes')}")
        return finite(out)

    return run_stage("campaign_clustering", body, a.out, {"table": a.table_result},
                     settings_of(a), {"csv": a.csv})


def campaign_model(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from ..campaign.io import finite, write_rows
        from ..campaign.model import campaign_model as fit
        from ..campaign.rotation import rotation_classifier
        from ..campaign.table import analysed, pick_temperature, read_table

        s = ctx.settings
        frame = analysed(read_table(a.table))
        T = pick_temperature(frame, s.temperature_K)
        out, parity, predictions = fit(frame, T, s)
        rotation, shap = rotation_classifier(frame, T, s.model_min_materials, s.cv_splits,
                                             s.seed)
        out["rotation_classifier"] = {**rotation, "shap": shap}
        write_rows(ctx.outputs["parity"], parity,
                   ["feature_set", "id", "temperature_K", "log10_d_true", "log10_d_cv"])
        write_rows(ctx.outputs["predictions"], predictions,
                   ["feature_set", "id", "log10_d_pred", "log10_d_std", "p_superionic"])
        ctx.log(out.get("skipped") or ", ".join(
            f"{k}: CV R² {v.get('cv_r2', float('nan')):.2f}"
            for k, v in out["feature_sets"].items()))
        return finite(out)

    return run_stage("campaign_model", body, a.out, {"table": a.table_result},
                     settings_of(a), {"parity": a.parity, "predictions": a.predictions})


def campaign_figures(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from ..campaign.figures import campaign_figures as draw
        from ..campaign.io import read_analysis, read_rows
        from ..campaign.table import analysed, pick_temperature, read_table

        s = ctx.settings
        frame = analysed(read_table(a.table))
        T = pick_temperature(frame, s.temperature_K)
        names = draw(frame, read_analysis(a.statistics), read_analysis(a.clustering),
                     read_rows(a.clusters), read_analysis(a.model), read_rows(a.parity), T,
                     s.colormap, ctx.outputs["figures"])
        ctx.log(f"{len(names)} figures at {T} K")
        return {"temperature_K": T, "n_figures": len(names)}

    return run_stage("campaign_figures", body, a.out, {"table": a.table_result},
                     settings_of(a), {"figures": a.figures})


def campaign_summary(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from ..campaign.io import read_rows
        from ..campaign.summary import summary_markdown
        from ..campaign.table import read_table

        text = summary_markdown(read_result(a.table_result), read_result(a.statistics),
                                read_result(a.clustering), read_result(a.model),
                                read_rows(a.predictions), ctx.settings.top_candidates,
                                read_table(a.table))
        with atomic_path(ctx.outputs["summary"]) as tmp:
            Path(tmp).write_text(text)
        return {"lines": text.count("\n")}

    return run_stage("campaign_summary", body, a.out, {"table": a.table_result},
                     settings_of(a), {"summary": a.summary})
