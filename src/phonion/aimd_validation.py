"""MLP molecular dynamics against AIMD at the same temperature (seed 000 §2.6, Figs. S6–S7;
issue 14).

The AIMD trajectory (``aimd`` stage, same supercell as the MLP MD) goes through the same
diffusion analysis as the MLP trajectory (:func:`phonion.diffusion.analyze_trajectory`,
same settings). Reported: both D_avg with their 95 % intervals and the ratio MLP/AIMD with
a conservative interval (the ratio of the interval ends, low/high and high/low), when both
runs are diffusive; otherwise each run's verdict and upper bound. In every case the
mobile-ion MSD of both at a common lag time (half the shorter run), whose ratio compares
the vibrational amplitude when neither diffuses; and both MSD(t) curves for the overlay.
"""

from __future__ import annotations

import numpy as np

from .settings import DiffusionSettings


def _mobile_msd(arrays: dict, ion: str) -> tuple[np.ndarray, np.ndarray]:
    """(lag times ps, total mobile-ion MSD Å² = sum of the three directions)."""
    return np.asarray(arrays["time_ps"]), np.asarray(arrays[f"msd/{ion}_A2"]).sum(axis=1)


def compare(aimd_traj: dict, mlp_result: dict, mlp_arrays: dict,
            s: DiffusionSettings | None = None,
            acoustic_cutoff_THz: float | None = None) -> tuple[dict, dict]:
    """Scalars and arrays of the MLP-vs-AIMD comparison at one temperature: ``mlp_result``
    and ``mlp_arrays`` are the MLP ``diffusion`` stage's JSON and arrays."""
    from .diffusion import analyze_trajectory

    s = s or DiffusionSettings()
    aimd, arrays_aimd = analyze_trajectory(aimd_traj, s, acoustic_cutoff_THz)
    out: dict = {"aimd": {k: v for k, v in aimd.items() if k not in ("status", "reason")},
                 "aimd_status": aimd.get("status", "ok"), "aimd_reason": aimd.get("reason", "")}
    for who, res in (("mlp", mlp_result), ("aimd", aimd)):
        out[f"d_{who}_A2_ps"] = res.get("d_avg_A2_ps")
        out[f"d_{who}_ci95_A2_ps"] = res.get("d_avg_ci95_A2_ps")
        out[f"d_{who}_upper_bound_A2_ps"] = res.get("d_avg_upper_bound_A2_ps")
        out[f"{who}_verdict"] = res.get("d_avg_verdict")
        out[f"{who}_duration_ps"] = res.get("duration_ps")
    d_m, d_a = out["d_mlp_A2_ps"], out["d_aimd_A2_ps"]
    if d_m and d_a:
        out["d_ratio_mlp_aimd"] = d_m / d_a
        (lo_m, hi_m), (lo_a, hi_a) = out["d_mlp_ci95_A2_ps"], out["d_aimd_ci95_A2_ps"]
        out["d_ratio_interval"] = ([lo_m / hi_a, hi_m / lo_a] if lo_a > 0 and hi_a > 0
                                   else None)
        out["reason"] = ""
    else:
        out["d_ratio_mlp_aimd"] = None
        out["d_ratio_interval"] = None
        out["reason"] = "no D ratio: " + "; ".join(
            f"{who.upper()} {out[f'{who}_verdict'] or 'no D'}"
            for who, d in (("mlp", d_m), ("aimd", d_a)) if not d)
    ion = s.mobile_ion
    t_m, m_m = _mobile_msd(mlp_arrays, ion)
    t_a, m_a = _mobile_msd(arrays_aimd, ion)
    t_common = 0.5 * min(t_m[-1], t_a[-1])
    msd_m, msd_a = float(np.interp(t_common, t_m, m_m)), float(np.interp(t_common, t_a, m_a))
    out.update({"common_lag_ps": float(t_common), "msd_mobile_mlp_A2": msd_m,
                "msd_mobile_aimd_A2": msd_a,
                "msd_ratio_mlp_aimd": msd_m / msd_a if msd_a > 0 else None})
    arrays = {"mlp/time_ps": t_m, "mlp/msd_mobile_A2": m_m,
              "aimd/time_ps": t_a, "aimd/msd_mobile_A2": m_a}
    return out, arrays
