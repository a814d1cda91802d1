"""The campaign table: one row per material and MD temperature from the stage results.

Every descriptor carries its unit in the column name (``_A2``, ``_THz``, ``_cm2_s``...).
A diffusion coefficient enters correlations, fits and models (column ``use_in_fits``) only
when it is *valid*: the diffusion stage is ``ok``, the run is neither ``too_short`` nor
``melted``, and the ion's D is resolved (``diffusive`` is not false: "not resolved" and
"does not diffuse" give an upper bound, never a D). Flagged runs keep their
numbers in the table, marked, and enter fits only with ``campaign.include_flagged``. An
external table (``campaign.external_d``: D measured or simulated elsewhere) adds rows
marked by their ``d_source``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ..formats import read_result
from ..status import material_of, material_status
from .columns import _float, aimd_columns, dynamics_columns, md_committee_columns

#: Flags of a diffusion result that make its D no diffusion coefficient.
FLAGS = ("too_short", "melted")

#: 1 Å²/ps in cm²/s.
A2_PS_TO_CM2_S = 1e-4

#: Phonon-descriptor scalars copied as they are (their names carry their units).
PHONON_SCALARS = (
    "acoustic_cutoff_THz", "lowest_optical_gamma_THz", "pdos_mobile_centre_THz",
    "pdos_mobile_width_THz", "pdos_mobile_skewness", "pdos_mobile_kurtosis_excess",
    "pdos_host_centre_THz", "pdos_host_width_THz", "pdos_all_centre_THz",
    "pdos_all_width_THz", "coupling_mean_below_low_frequency",
    "participation_ratio_mean_below_low_frequency",
)
#: Per-temperature phonon descriptors (``by_temperature_K``), copied as ``<name>_<T>K``
#: with the unit suffix kept last (``msd_mobile_mean_300K_A2``).
PHONON_BY_T = ("msd_mobile_mean_A2", "msd_mobile_max_A2", "msd_host_mean_A2",
               "msd_share_below_low_frequency")

#: Column prefixes of each descriptor family (the feature sets of the model).
PHONON_PREFIX = "ph_"
STRUCTURE_PREFIX = "st_"
ELASTIC_PREFIX = "el_"
#: seed 003's descriptors from the MD VDOS at the row's temperature (phonion.anharmonic)
ANHARMONIC_PREFIX = "an_"

#: Columns of an external diffusion table (``campaign.external_d``).
EXTERNAL_REQUIRED = ("id", "temperature_K", "source")


def _with_T(name: str, T: str) -> str:
    """``msd_mobile_mean_A2`` at 300 K → ``msd_mobile_mean_300K_A2``."""
    for unit in ("_A2",):
        if name.endswith(unit):
            return f"{name[: -len(unit)]}_{T}K{unit}"
    return f"{name}_{T}K"


def collect(result_files: Iterable[str | Path]) -> dict[str, list[dict]]:
    """material id → its stage results, in the order given (pipeline order)."""
    out: dict[str, list[dict]] = {}
    for path in result_files:
        out.setdefault(material_of(path), []).append(read_result(path))
    return out


def _ok(res: dict | None) -> bool:
    return bool(res) and res.get("status") == "ok"


def material_row(results: list[dict]) -> dict:
    """Descriptors of one material (every column that does not depend on the MD
    temperature) from its stage results."""
    by = {r["stage"]: r for r in results
          if r["stage"] not in ("md", "diffusion", "dynamics", "md_committee")}
    stage, status, reason = material_status(results)
    row: dict = {"id": results[0]["material_id"], "status": status, "status_stage": stage,
                 "status_reason": reason}
    intake = by.get("intake", {})
    formula = (intake.get("primitive") or {}).get("formula", "")
    row["formula"] = formula
    row["reduced_formula"] = reduced_formula(formula) if formula else row["id"]
    relax = by.get("relax", {})
    model = (relax.get("provenance") or {}).get("model") or {}
    row["model_backend"] = model.get("backend", "")
    row["model_name"] = model.get("name", "")
    row["model_sha256"] = model.get("sha256", "")
    row["spacegroup"] = relax.get("spacegroup_final", (intake.get("primitive") or {})
                                  .get("spacegroup", ""))
    stab = by.get("stability", {})
    row["stable"] = stab.get("stable") if "stable" in stab else None
    row["lowest_frequency_THz"] = _float(stab.get("lowest_frequency_THz"))
    row["stability_verdict"] = stab.get("verdict", "")  # stable | unstable | fit_artefact
    fd = by.get("fd_check", {})
    if fd.get("status") in ("ok", "failed") and "agree" in fd:
        row["fd_check_agree"] = fd["agree"]
        row["fd_stable"] = fd.get("fd_stable")
        row["fd_lowest_frequency_THz"] = _float(fd.get("fd_lowest_frequency_THz"))
        errors = fd.get("msd_relative_error") or []
        row["fd_msd_relative_error_max"] = (_float(max(errors, key=abs)) if errors
                                            else math.nan)
    # issue 26: how far to trust the model's verdict — a second model, and DFT
    rc = by.get("stability_recheck", {})
    if _ok(rc):
        row["recheck_model"] = rc.get("second_model", "")
        row["recheck_stable"] = rc.get("stable")
        row["recheck_lowest_frequency_THz"] = _float(rc.get("lowest_frequency_THz"))
        row["model_dependent_verdict"] = rc.get("model_dependent_verdict")
        row["force_disagreement_rms_meV_A"] = _float(rc.get("force_disagreement_rms_meV_A"))
        row["force_disagreement_relative"] = _float(rc.get("force_disagreement_relative"))
        row["extrapolating"] = rc.get("extrapolating")
        row["recheck_shared_cell_lowest_frequency_THz"] = _float(
            rc.get("shared_cell_lowest_frequency_THz"))
        if rc.get("committee_size"):  # stability_recheck.further_models
            row["committee_size"] = rc["committee_size"]
            row["committee_force_std_relative"] = _float(rc.get("committee_force_std_relative"))
            row["committee_lowest_frequency_spread_THz"] = _float(
                rc.get("committee_lowest_frequency_spread_THz"))
        # the second model's harmonic mobile-ion MSD over the first's (both stable)
        for T, ratio in (rc.get("msd_mobile_ratio_by_temperature_K") or {}).items():
            row[_with_T("recheck_msd_mobile_ratio", T)] = _float(ratio)
    dv = by.get("dft_validation", {})
    if _ok(dv) and "mlp_verdict_check" in dv:
        row["dft_stable"] = dv.get("dft_stable")
        row["dft_lowest_frequency_THz"] = _float(dv.get("dft_lowest_frequency_THz"))
        row["mlp_verdict_check"] = dv["mlp_verdict_check"]  # confirmed | contradicted
        row["dft_force_rmse_meV_A"] = _float(dv.get("force_rmse_meV_A"))
        hot = dv.get("by_temperature_K") or {}
        row["msd_ratio_mlp_dft"] = (_float(hot[max(hot, key=float)]["msd_ratio_mlp_dft"])
                                    if hot else math.nan)
    pd_ = by.get("phonon_descriptors", {})
    if _ok(pd_):
        for key in PHONON_SCALARS:
            row[PHONON_PREFIX + key] = _float(pd_.get(key))
        for T, values in (pd_.get("by_temperature_K") or {}).items():
            for key in PHONON_BY_T:
                row[PHONON_PREFIX + _with_T(key, str(T))] = _float(values.get(key))
    sd = by.get("structure_descriptors", {})
    if _ok(sd):
        for key, value in (sd.get("descriptors") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                row[STRUCTURE_PREFIX + key] = _float(value)
        row["spacegroup_number"] = sd.get("spacegroup_number")
    el = by.get("elastic", {})
    row["mechanically_stable"] = el.get("mechanically_stable") if _ok(el) else None
    if _ok(el):
        for key, value in (el.get("descriptors") or {}).items():
            row[ELASTIC_PREFIX + key] = _float(value)
    arr = by.get("arrhenius", {})
    if _ok(arr):
        row["ea_eV"] = _float(arr.get("ea_eV"))
        row["ea_stderr_eV"] = _float(arr.get("ea_stderr_eV"))
        row["sigma_300K_S_cm"] = _float(arr.get("sigma_300K_S_cm"))
    return row


def diffusion_columns(res: dict) -> dict:
    """D with its 95 % interval (cm²/s), flags and VDOS descriptors of one diffusion
    result."""
    flags = {f: bool(res.get(f, False)) for f in FLAGS}
    row = {"temperature_K": _float(res.get("temperature_K")), "d_source": "md",
           "diffusion_status": res.get("status", ""), "diffusion_reason": res.get("reason", ""),
           **flags}
    for name, key in (("d_avg", "d_avg"), ("d_max", "d_max_direction")):
        ci = res.get(f"{key}_ci95_A2_ps") or [None, None]
        row[f"{name}_cm2_s"] = _float(res.get(f"{key}_A2_ps")) * A2_PS_TO_CM2_S
        row[f"{name}_ci95_low_cm2_s"] = _float(ci[0]) * A2_PS_TO_CM2_S
        row[f"{name}_ci95_high_cm2_s"] = _float(ci[1]) * A2_PS_TO_CM2_S
    # the diffusion stage of issue 12 says when the ion never left its vibrational plateau:
    # no D then, only an upper bound (absent in older results: None)
    row["diffusive"] = res.get("diffusive")
    # issue 25: why there is no D — the ion does not diffuse, or the run was too short
    row["diffusion_class"] = res.get("diffusion_class") or (
        None if res.get("diffusive") is None else
        "diffusive" if res.get("diffusive") else "not_resolved")
    row["run_needed_ps"] = _float(res.get("run_needed_ps"))
    row["d_avg_upper_bound_cm2_s"] = _float(res.get("d_avg_upper_bound_A2_ps")) * A2_PS_TO_CM2_S
    row["vdos_centre_mobile_THz"] = _float(res.get("vdos_centre_mobile_THz"))
    row["vdos_centre_over_acoustic_cutoff"] = _float(res.get("vdos_centre_over_acoustic_cutoff"))
    row["md_duration_ps"] = _float(res.get("duration_ps"))
    # seed 000 §3.1: the MD's vibrational MSD against the harmonic one of the same modes
    for key in ("msd_md_over_harmonic", "msd_md_vibrational_mobile_A2",
                "msd_harmonic_supercell_classical_mobile_A2"):
        row[key] = _float(res.get(key))
    for key, value in (res.get("anharmonic") or {}).items():
        row[ANHARMONIC_PREFIX + key] = _float(value)
    row["d_computed"] = res.get("status") in ("ok", "failed") and math.isfinite(
        row["d_avg_cm2_s"])
    return row


def reduced_formula(formula: str) -> str:
    """Reduced composition (the CV group: polymorphs of one composition stay together)."""
    from pymatgen.core import Composition

    return Composition(formula).reduced_formula


def read_external(path: str | Path) -> pd.DataFrame:
    """An external diffusion table: columns ``id``, ``temperature_K``, ``source`` and D as
    ``d_cm2_s`` or ``d_A2_ps``, optionally with its 95 % interval (``d_ci95_low_cm2_s``,
    ``d_ci95_high_cm2_s``, or the same in ``_A2_ps``) and ``d_max_cm2_s``."""
    ext = pd.read_csv(path, comment="#")
    missing = [c for c in EXTERNAL_REQUIRED if c not in ext.columns]
    unit = "cm2_s" if "d_cm2_s" in ext.columns else "A2_ps" if "d_A2_ps" in ext.columns else ""
    if missing or not unit:
        raise ValueError(
            f"campaign.external_d {path}: needs columns {', '.join(EXTERNAL_REQUIRED)} and "
            f"d_cm2_s (or d_A2_ps); missing {', '.join(missing + ([] if unit else ['d_cm2_s']))}")
    scale = 1.0 if unit == "cm2_s" else A2_PS_TO_CM2_S
    out = pd.DataFrame({"id": ext["id"].astype(str),
                        "temperature_K": ext["temperature_K"].astype(float),
                        "d_source": ext["source"].astype(str)})
    out["d_avg_cm2_s"] = ext[f"d_{unit}"].astype(float) * scale
    for side in ("low", "high"):
        col = f"d_ci95_{side}_{unit}"
        out[f"d_avg_ci95_{side}_cm2_s"] = (ext[col].astype(float) * scale
                                           if col in ext.columns else np.nan)
    out["d_max_cm2_s"] = (ext["d_max_cm2_s"].astype(float) if "d_max_cm2_s" in ext.columns
                          else np.nan)
    return out


def build_table(collected: dict[str, list[dict]], include_flagged: bool = False,
                external: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """The campaign table and a note of what was merged: one row per material and MD
    temperature (one row without a temperature for a material without MD), then one row
    per external D of a campaign material."""
    if not collected:
        from ..errors import PhonionError

        raise PhonionError("no material reached the campaign table (every structure was "
                           "rejected at parse time; see status.tsv)")
    rows, materials = [], {}
    for mid, results in collected.items():
        base = material_row(results)
        materials[mid] = base
        diff = [r for r in results if r["stage"] == "diffusion"]
        if not diff:
            rows.append({**base, "temperature_K": np.nan, "d_source": ""})
        committee = {_float(r.get("temperature_K")): r for r in results
                     if r["stage"] == "md_committee" and _ok(r)}
        dyn = {_float(r.get("temperature_K")): r for r in results
               if r["stage"] == "dynamics" and _ok(r)}
        aimd = {_float(r.get("temperature_K")): r for r in results
                if r["stage"] == "aimd_validation" and _ok(r)}
        for res in diff:
            row = {**base, **diffusion_columns(res)}
            rows.append({**row, **md_committee_columns(committee.get(row["temperature_K"])),
                         **dynamics_columns(dyn.get(row["temperature_K"])),
                         **aimd_columns(aimd.get(row["temperature_K"]))})
    note: dict = {"n_materials": len(materials), "external_rows": 0, "external_unmatched": []}
    if external is not None and len(external):
        unmatched = sorted(set(external["id"]) - set(materials))
        note["external_unmatched"] = unmatched
        for rec in external[external["id"].isin(materials)].to_dict("records"):
            rows.append({**materials[rec["id"]], **rec, "diffusion_status": "external",
                         "diffusion_reason": "", **{f: False for f in FLAGS},
                         "d_computed": math.isfinite(rec["d_avg_cm2_s"])})
            note["external_rows"] += 1
    table = pd.DataFrame(rows)
    for col in ("d_avg_cm2_s", "d_max_cm2_s", "d_avg_ci95_low_cm2_s", "d_avg_ci95_high_cm2_s",
                "d_max_ci95_low_cm2_s", "d_max_ci95_high_cm2_s", *FLAGS, "d_computed"):
        if col not in table.columns:
            table[col] = np.nan if not (col in FLAGS or col == "d_computed") else False
    for col in (*FLAGS, "d_computed"):
        table[col] = table[col].fillna(False).astype(bool)
    for col in ("diffusion_status", "diffusion_reason"):  # md.enabled false: no D row
        if col not in table.columns:
            table[col] = ""
    positive = table["d_avg_cm2_s"].gt(0)
    ok = table["diffusion_status"].isin(["ok", "external"])
    table["flagged"] = table[list(FLAGS)].any(axis=1)
    not_diffusive = table["diffusive"].eq(False) if "diffusive" in table else False
    table["d_valid"] = table["d_computed"] & positive & ok & ~table["flagged"] & ~not_diffusive
    table["use_in_fits"] = table["d_valid"] | (
        include_flagged & table["flagged"] & table["d_computed"] & positive)
    for name in ("d_avg", "d_max"):
        d = table[f"{name}_cm2_s"].astype(float)
        table[f"log10_{name}_cm2_s"] = np.log10(d.where(d > 0))
    front = ["id", "formula", "reduced_formula", "temperature_K", "d_source", "status",
             "d_valid", "use_in_fits", "flagged", *FLAGS]
    table = table[front + [c for c in table.columns if c not in front]]
    note["n_rows"] = len(table)
    note["n_valid"] = int(table["d_valid"].sum())
    note["n_flagged"] = int(table["flagged"].sum())
    note["n_not_diffusive"] = int(np.sum(not_diffusive))
    note["n_use_in_fits"] = int(table["use_in_fits"].sum())
    return table.sort_values(["id", "temperature_K"], kind="stable").reset_index(drop=True), note


def descriptor_columns(table: pd.DataFrame, wanted: Iterable[str] = ()) -> list[str]:
    """The descriptor columns to analyse: ``wanted`` in its order (each must exist), or
    every phonon, structure, elastic and anharmonic (MD-VDOS) column that holds at least
    one number."""
    wanted = list(wanted)
    if wanted:
        missing = [w for w in wanted if w not in table.columns]
        if missing:
            raise ValueError(f"campaign.descriptors names columns the table does not have: "
                             f"{', '.join(missing)} (see table.csv for the column names)")
        return wanted
    prefixes = (PHONON_PREFIX, STRUCTURE_PREFIX, ELASTIC_PREFIX, ANHARMONIC_PREFIX)
    return [c for c in table.columns if c.startswith(prefixes)
            and pd.to_numeric(table[c], errors="coerce").notna().any()]


def per_material(columns: Iterable[str]) -> list[str]:
    """The descriptors that belong to a material whatever the MD temperature: all but the
    MD-VDOS (``an_``) ones, which are per temperature and enter only the analyses done at
    one temperature (the correlations with D, the model), never the correlogram, PCA and
    k-means over materials (one row per material: an ``an_`` value would be that of
    whichever temperature comes first, and materials without MD would drop out of PCA)."""
    return [c for c in columns if not c.startswith(ANHARMONIC_PREFIX)]


def materials_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per material (its descriptors; the first row of each id)."""
    return table.drop_duplicates("id").reset_index(drop=True)


def pick_temperature(table: pd.DataFrame, wanted: float | None = None) -> float | None:
    """The temperature of the D-based analyses: ``wanted``, else the one with the most rows
    usable in fits (the highest among equals), else the highest MD temperature."""
    if wanted is not None:
        return float(wanted)
    temps = table["temperature_K"].dropna()
    if temps.empty:
        return None
    counts = table[table["use_in_fits"]].groupby("temperature_K").size()
    if counts.empty:
        return float(temps.max())
    best = counts.max()
    return float(max(t for t, n in counts.items() if n == best))


def write_table(table: pd.DataFrame, csv_path: str | Path, parquet_path: str | Path) -> None:
    """``table.csv`` and ``table.parquet``, atomically."""
    from ..formats import atomic_path

    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(parquet_path) as tmp:
        table.to_parquet(tmp, index=False)


def read_table(path: str | Path) -> pd.DataFrame:
    return pd.read_parquet(path) if str(path).endswith(".parquet") else pd.read_csv(path)


def analysed(table: pd.DataFrame) -> pd.DataFrame:
    """The rows the campaign statistics, clustering, model and figures use: every material
    as the campaign model saw it. A material screened again with the fine-tuned model
    (``<id>+finetuned``, :mod:`phonion.finetune`) is the same compound twice: counted twice
    it would fake correlations; it stays in the table and the summary's ranking."""
    from ..settings_dft import rescreened

    return table[~table["id"].map(rescreened)].reset_index(drop=True)
