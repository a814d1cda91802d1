"""Per-temperature columns of the campaign table from the stages that run beside the
diffusion analysis of one MD run: the committee on its frames, its dynamics analyses
(rotation category, density), and the AIMD comparison at that temperature (split from
:mod:`phonion.campaign.table`, which builds the rows)."""

from __future__ import annotations

import math


def _float(value) -> float:
    """A finite float, or NaN for anything else (the table's one conversion)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def md_committee_columns(res: dict | None) -> dict:
    """The second model against the first on frames of this MD run (issue 26): relative
    and RMS force disagreement (meV/Å), its ratio to the disagreement on the phonon
    snapshots, and ``md_extrapolating``; empty without an ``md_committee`` result."""
    if not res:
        return {}
    return {"md_force_disagreement_relative": _float(res.get("force_disagreement_relative")),
            "md_force_disagreement_rms_meV_A": _float(res.get("force_disagreement_rms_meV_A")),
            "md_disagreement_over_snapshots": _float(res.get("ratio_to_snapshots")),
            "md_extrapolating": res.get("extrapolating")}


def aimd_columns(res: dict | None) -> dict:
    """MLP MD against AIMD at this temperature (``aimd_validation``): D and MSD ratios, and
    seed 002's side by side — VDOS and G_s overlaps (1 = equal), the largest g(r) RMS
    difference over the pairs with the mobile ion, the G_d/ρ RMS difference."""
    if not res:
        return {}
    rdf = [v for k, v in res.items() if k.startswith("rdf_rms_difference_")]
    return {"aimd_d_ratio_mlp_aimd": _float(res.get("d_ratio_mlp_aimd")),
            "aimd_msd_ratio_mlp_aimd": _float(res.get("msd_ratio_mlp_aimd")),
            "aimd_vdos_overlap_mobile": _float(res.get("vdos_overlap_mobile")),
            "aimd_van_hove_self_overlap": _float(res.get("van_hove_self_overlap")),
            "aimd_van_hove_distinct_rms_difference": _float(
                res.get("van_hove_distinct_rms_difference")),
            "aimd_rdf_rms_difference_max": _float(max(rdf)) if rdf else math.nan}


def dynamics_columns(res: dict | None) -> dict:
    """From this MD run's ``dynamics`` stage: seed 001's rotation–diffusion category with
    its inputs (smallest polyanion C(t) at half the run, mobile-ion TMSD), and the
    dimensionality of the mobile ion's paths with the free-energy barriers of 1D/2D/3D
    percolation (eV, NaN where no path of that dimension was seen; phonion.density)."""
    if not res:
        return {}
    row: dict = {}
    if "rotation_diffusion_category" in res:
        row["rotation_diffusion_category"] = res["rotation_diffusion_category"]
        row["polyanion_C_half_run_min"] = _float(res.get("polyanion_C_half_run_min"))
        row["mobile_tmsd_A2"] = _float(res.get("mobile_tmsd_A2"))
        limits = res.get("category_thresholds") or {}
        row["rotation_threshold_C"] = _float(limits.get("rotation_C"))
        row["diffusion_threshold_tmsd_A2"] = _float(limits.get("diffusion_tmsd_A2"))
    if "van_hove_distinct_within_1A" in res:  # seed 002: ions taking each other's sites
        row["van_hove_distinct_within_1A"] = _float(res.get("van_hove_distinct_within_1A"))
        row["van_hove_distinct_within_1A_random"] = _float(
            res.get("van_hove_distinct_within_1A_random"))
    if "density_dimensionality" in res:
        row["density_dimensionality"] = res["density_dimensionality"]
        for d in (1, 2, 3):
            row[f"percolation_barrier_{d}d_eV"] = _float(
                res.get(f"density_percolation_barrier_{d}d_eV"))
    return row
