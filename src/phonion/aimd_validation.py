"""MLP molecular dynamics against AIMD at the same temperature (seed 000 §2.6, Figs. S6–S7;
issue 14).

The AIMD trajectory (``aimd`` stage, same supercell as the MLP MD) goes through the same
diffusion analysis as the MLP trajectory (:func:`phonion.diffusion.analyze_trajectory`,
same settings). Reported: both D_avg with their 95 % intervals and the ratio MLP/AIMD with
a conservative interval (the ratio of the interval ends, low/high and high/low), when both
runs are diffusive; otherwise each run's verdict and upper bound. In every case the
mobile-ion MSD of both at a common lag time (half the shorter run), whose ratio compares
the vibrational amplitude when neither diffuses; and both MSD(t) curves for the overlay.

With the MLP trajectory too, :func:`compare_structure` puts the two runs side by side as
seed 002 does (its Figs. 3-4): g(r) of the mobile ion with every species, the mobile-ion
VDOS, the self and distinct van Hove functions at the common lag, and the angle
distribution inside tetrahedral polyanions, each with one number that says how far apart
they are.
"""

from __future__ import annotations

import numpy as np

from .settings import DiffusionSettings


def _mobile_msd(arrays: dict, ion: str) -> tuple[np.ndarray, np.ndarray]:
    """(lag times ps, total mobile-ion MSD Å² = sum of the three directions)."""
    return np.asarray(arrays["time_ps"]), np.asarray(arrays[f"msd/{ion}_A2"]).sum(axis=1)


def compare(aimd_traj: dict, mlp_result: dict, mlp_arrays: dict,
            s: DiffusionSettings | None = None,
            acoustic_cutoff_THz: float | None = None,
            mlp_traj: dict | None = None) -> tuple[dict, dict]:
    """Scalars and arrays of the MLP-vs-AIMD comparison at one temperature: ``mlp_result``
    and ``mlp_arrays`` are the MLP ``diffusion`` stage's JSON and arrays; with ``mlp_traj``
    (the MLP trajectory) also :func:`compare_structure` at the common lag."""
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
    if mlp_traj is not None:
        more, curves = compare_structure(mlp_traj, aimd_traj, ion, t_common, mlp_arrays,
                                         arrays_aimd)
        out.update(more)
        arrays.update({f"structure/{k}": v for k, v in curves.items()})
    return out, arrays


def _overlap(x: np.ndarray, f: np.ndarray, g: np.ndarray) -> float:
    """∫ min(f, g) dx of two distributions each normalised to 1 on ``x``: 1 when equal,
    0 when disjoint."""
    f = f / np.trapezoid(f, x)
    g = g / np.trapezoid(g, x)
    return float(np.trapezoid(np.minimum(f, g), x))


def _angle_overlaps(runs: dict, mobile_ion: str, arrays: dict) -> dict:
    """Overlap of the ligand–ligand–ligand angle distributions ρ(θ) of each tetrahedral
    polyanion (seed 002 eq. 4) between the two runs, the units of each run found in its
    own first frame (none in either: nothing)."""
    from .dynamics import find_polyanions, tetrahedral_angles
    from .geometry import symbols_of

    edges = np.arange(30.0, 90.5, 1.0)
    theta = 0.5 * (edges[1:] + edges[:-1])
    rho: dict = {}
    for who, tr in runs.items():
        # the units of each run from its own first frame: a VASP AIMD lists the atoms by
        # species, the MLP run in the input order, so indices do not carry over
        pos = np.asarray(tr["positions_A"], float)
        for u in find_polyanions(pos, tr["cell_A"], symbols_of(tr["numbers"]), mobile_ion):
            if u.ligands.shape[1] == 4:
                rho.setdefault(u.name, {})[who] = np.histogram(
                    tetrahedral_angles(u.vectors(pos)), edges, density=True)[0]
    out = {}
    for name, both in rho.items():
        if len(both) == 2:
            out[f"tetrahedral_angle_overlap_{name}"] = _overlap(theta, both["mlp"],
                                                                both["aimd"])
            for who, r in both.items():
                arrays[f"angles/{who}/{name}"] = r
            arrays["angles/theta_deg"] = theta
    return out


def compare_structure(mlp_traj: dict, aimd_traj: dict, mobile_ion: str, lag_ps: float,
                      mlp_arrays: dict, aimd_arrays: dict, r_max_A: float = 8.0,
                      bin_A: float = 0.05, max_frames: int = 200) -> tuple[dict, dict]:
    """Seed 002's MLMD-vs-AIMD comparisons at one temperature: g(r) of the mobile ion with
    every species (RMS difference and first-peak shift), the mobile-ion VDOS (overlap, both
    normalised; from the diffusion arrays), G_s and G_d of the mobile ion at ``lag_ps``
    (overlap of 4πr²G_s; RMS difference of G_d/ρ). ``*_arrays``: each run's diffusion
    arrays. Returns scalars and the curves for the overlay figure."""
    from .dynamics import rdfs, van_hove_distinct, van_hove_self
    from .geometry import symbols_of

    out: dict = {}
    arrays: dict = {}
    runs = {"mlp": mlp_traj, "aimd": aimd_traj}
    width = min(float(np.min(np.linalg.norm(np.asarray(tr["cell_A"]), axis=1)))
                for tr in runs.values())
    r_max_A = min(r_max_A, width / 2)
    species = sorted(set(symbols_of(aimd_traj["numbers"])))
    pairs = [(mobile_ion, b) for b in species]
    g = {}
    for who, tr in runs.items():
        r, g[who] = rdfs(tr["positions_A"], tr["cell_A"], symbols_of(tr["numbers"]), pairs,
                         r_max_A, bin_A, max_frames)
        for pair, curve in g[who].items():
            arrays[f"rdf/{who}/{pair[0]}-{pair[1]}"] = curve
    arrays["rdf/r_A"] = r
    for pair in pairs:
        a, b = g["mlp"][pair], g["aimd"][pair]
        name = f"{pair[0]}-{pair[1]}"
        out[f"rdf_rms_difference_{name}"] = float(np.sqrt(np.mean((a - b) ** 2)))
        out[f"rdf_first_peak_shift_{name}_A"] = float(r[np.argmax(a)] - r[np.argmax(b)])
    key = f"vdos/{mobile_ion}"
    if key in mlp_arrays and key in aimd_arrays:
        from .correlations import vdos_support_max

        fm, fa = mlp_arrays["vdos/frequency_THz"], aimd_arrays["vdos/frequency_THz"]
        # up to the end of the spectra above their noise floors, which depend on the frame
        # spacing (AIMD every step, MLP MD every few)
        top = max(vdos_support_max(fm, mlp_arrays[key]), vdos_support_max(fa, aimd_arrays[key]))
        top = min(top, fm[-1], fa[-1])
        nu = np.linspace(0.0, top, 2000)
        vm, va = np.interp(nu, fm, mlp_arrays[key]), np.interp(nu, fa, aimd_arrays[key])
        out["vdos_overlap_mobile"] = _overlap(nu, vm, va)
        arrays.update({"vdos/frequency_THz": nu, "vdos/mlp": vm, "vdos/aimd": va})
    gs, gd = {}, {}
    for who, tr in runs.items():
        dt = float(tr["frame_dt_ps"])
        mob = symbols_of(tr["numbers"]) == mobile_ion
        lag = np.array([max(round(lag_ps / dt), 1) * dt])
        r_s, gs[who] = van_hove_self(tr["positions_A"][:, mob], dt, lag, r_max_A, bin_A)
        r_d, g_d, _ = van_hove_distinct(tr["positions_A"][:, mob], tr["cell_A"], dt, lag,
                                        r_max_A, bin_A, max_frames)
        rho = (mob.sum() - 1) / abs(np.linalg.det(np.asarray(tr["cell_A"])))  # j ≠ i
        gd[who] = g_d[0] / rho
        arrays[f"van_hove/{who}/G_s_A-3"] = gs[who][0]
        arrays[f"van_hove/{who}/G_d_over_rho"] = gd[who]
    arrays["van_hove/r_A"] = r_s
    out.update(_angle_overlaps(runs, mobile_ion, arrays))
    out["van_hove_lag_ps"] = float(lag_ps)
    out["van_hove_self_overlap"] = _overlap(r_s, r_s**2 * gs["mlp"][0], r_s**2 * gs["aimd"][0])
    out["van_hove_distinct_rms_difference"] = float(np.sqrt(np.mean((gd["mlp"] - gd["aimd"])
                                                                    ** 2)))
    return out, arrays
