"""The campaign's DFT-validation tables (issue 14): ``results/campaign/validation.csv`` from
the ``dft_validation`` results and ``mlp_benchmark.csv`` / ``mlp_benchmark_summary.csv`` from
those and the ``mlp_benchmark`` results (science: :mod:`phonion.dft_validation`)."""

from __future__ import annotations

#: columns of results/campaign/validation.csv, in order (per-temperature MSD columns follow).
TABLE_COLUMNS = [
    "id", "status", "reason", "mlp", "engine", "n_snapshots", "n_atoms_supercell",
    "force_rmse_meV_A", "force_rmse_mobile_meV_A", "dft_force_rms_meV_A", "fc2_rmse_eV_A2",
    "fc2_relative_rmse", "fc3_rmse_eV_A3", "fc3_relative_rmse", "band_rmse_THz", "mlp_stable",
    "dft_stable", "stability_agrees", "mlp_lowest_frequency_THz", "dft_lowest_frequency_THz",
]


def validation_table(results: list[dict]):
    """One row per validated material (a ``dft_validation`` result each): the force,
    fc2 and band errors, both verdicts, and ``msd_ratio_mlp_dft_<T>K`` per temperature;
    the last row, ``agreement``, holds the stability agreement rate over the compared
    materials and the mean force RMSE. Returns a pandas DataFrame."""
    import pandas as pd

    rows = []
    for r in results:
        row = {"id": r["material_id"], "status": r["status"], "reason": r.get("reason", "")}
        row.update({c: r.get(c) for c in TABLE_COLUMNS[3:]})
        for t, v in (r.get("by_temperature_K") or {}).items():
            row[f"msd_mlp_A2_{t}K"] = v["msd_mobile_mlp_A2"]
            row[f"msd_dft_A2_{t}K"] = v["msd_mobile_dft_A2"]
            row[f"msd_ratio_mlp_dft_{t}K"] = v["msd_ratio_mlp_dft"]
        rows.append(row)
    table = pd.DataFrame(rows, columns=None if rows else TABLE_COLUMNS)
    ok = table[table["status"] == "ok"] if len(table) else table
    if len(ok):
        summary = {"id": "agreement", "status": "", "n_snapshots": None,
                   "reason": f"{len(ok)} material(s) compared",
                   "stability_agrees": float(ok["stability_agrees"].astype(float).mean()),
                   "force_rmse_meV_A": float(ok["force_rmse_meV_A"].mean())}
        table = pd.concat([table, pd.DataFrame([summary])], ignore_index=True)
    for column in ("n_snapshots", "n_atoms_supercell"):
        if column in table:
            table[column] = table[column].astype("Int64")  # counts stay integers beside NaN
    return table


def benchmark_table(results: list[dict]):
    """One row per (material, MLP) from ``dft_validation`` results (the campaign's MLP) and
    ``mlp_benchmark`` results (the others): force RMSE, fc2 (and, with phonons.fc3, fc3)
    relative RMSE, band RMSE, both stability verdicts and the signed mobile-ion MSD error
    (MLP/DFT − 1, %) at the highest compared temperature; plus one ``model_summary`` per
    MLP (mean force, fc2 and fc3 errors, mean |MSD error|, stability agreement rate, cost
    per force call). Returns (rows, summary) DataFrames."""
    import pandas as pd

    rows = []
    for r in results:
        hot = r.get("by_temperature_K") or {}
        t = max(hot, key=float) if hot else None
        rows.append({
            "id": r["material_id"], "mlp": r.get("mlp", ""), "status": r["status"],
            "reason": r.get("reason", ""),
            **{k: r.get(k) for k in ("force_rmse_meV_A", "force_rmse_mobile_meV_A",
                                     "fc2_relative_rmse", "fc3_relative_rmse",
                                     "band_rmse_THz", "mlp_stable",
                                     "dft_stable", "stability_agrees",
                                     "seconds_per_force_call")},
            "msd_temperature_K": float(t) if t else None,
            "msd_error_percent": 100 * (hot[t]["msd_ratio_mlp_dft"] - 1) if t else None,
        })
    table = pd.DataFrame(rows)
    ok = table[table["status"] == "ok"]
    summary = ok.groupby("mlp", sort=True).agg(
        n_materials=("id", "count"),
        force_rmse_meV_A=("force_rmse_meV_A", "mean"),
        fc2_relative_rmse=("fc2_relative_rmse", "mean"),
        fc3_relative_rmse=("fc3_relative_rmse", "mean"),
        msd_abs_error_percent=("msd_error_percent", lambda x: x.abs().mean()),
        stability_agreement=("stability_agrees", lambda x: x.astype(float).mean()),
        seconds_per_force_call=("seconds_per_force_call", "mean"),
    ).reset_index() if len(ok) else pd.DataFrame()
    return table, summary
