"""Diffusion: mean-square displacement, diffusion coefficients with uncertainties, the
melt/decomposition filter and the vibrational density of states (seed 000 §2.4, eqs. 1, 2, 7).

Verbs: :func:`msd` (time-origin-averaged MSD by FFT, per atom and direction),
:func:`estimate_diffusion` (the default estimator: seed 000 eq. 2 as the slope of a
free-intercept generalised-least-squares fit over every lag from the end of the
vibrational rise to half the run (:mod:`phonion.diffusion_gls`; or over time blocks,
:mod:`phonion.diffusion_blocks`), a calibrated 95 % interval, and when D is not resolved
an upper bound with the verdict "does not diffuse" or "not resolved in this run length"),
:func:`diffusion_coefficient` (seed 000 eq. 2 literally, through the origin: the
``seed000`` estimator), :func:`melt_check`, :func:`vdos` and :func:`analyze_trajectory`
(all of it for one trajectory); :func:`msd` and :func:`vdos` live in
:mod:`phonion.correlations`. Inputs are unwrapped Cartesian positions (frames × atoms ×
3, Å) and the time between frames (ps); :func:`unwrap` makes them from wrapped fractional
ones (:func:`phonion.geometry.unwrap`). Choices and their calibration: docs/diffusion.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from . import diffusion_gls
from .correlations import msd, vdos, vdos_centre, vdos_support_max  # noqa: F401 - API
from .diffusion_blocks import (  # noqa: F401 - API
    BLOCK_LAG_FRACTION,
    block_msds,
    blocks_estimate,
    diffusive_start,
    loglog_slope,
)
from .diffusion_seed000 import (  # noqa: F401 - API
    Diffusion,
    TrajectoryTooShort,
    diffusion_coefficient,
)
from .errors import PhonionError
from .geometry import symbols_of
from .settings import DiffusionSettings

#: Default resolution (config ``diffusion.resolution_cm2_s``, 1e-6 cm²/s): an upper bound
#: below it reads "does not diffuse", above it "not resolved in this run length".
RESOLUTION_A2_PS = 1e-2


@dataclass
class Estimate:
    """Default estimator's result for one species (docs/diffusion.md, "Estimator").

    ``d_A2_ps`` is the free-intercept slope/(2n) over ``window_ps``; ``None`` when the
    species has not reached the diffusive regime (``diffusive`` false, ``verdict`` says
    why), and then ``upper_bound_A2_ps`` is all that the run can say about D.
    """

    d_A2_ps: float | None
    stderr_A2_ps: float | None
    ci95_A2_ps: tuple[float, float] | None
    upper_bound_A2_ps: float
    diffusive: bool
    verdict: str
    window_ps: tuple[float, float] | None
    intercept_A2: float | None
    d_blocks_A2_ps: list[float]
    n_atoms: int
    dimensions: int
    verdict_class: str = "not_resolved"  # diffusive | not_diffusing | not_resolved
    run_needed_ps: float | None = None
    collective_ratio: float | None = None

    def as_dict(self, prefix: str) -> dict:
        def cm2(x):
            return None if x is None else x * 1e-4

        return {
            f"{prefix}_A2_ps": self.d_A2_ps,
            f"{prefix}_stderr_A2_ps": self.stderr_A2_ps,
            f"{prefix}_ci95_A2_ps": None if self.ci95_A2_ps is None else list(self.ci95_A2_ps),
            f"{prefix}_cm2_s": cm2(self.d_A2_ps),
            f"{prefix}_upper_bound_A2_ps": self.upper_bound_A2_ps,
            f"{prefix}_upper_bound_cm2_s": cm2(self.upper_bound_A2_ps),
            f"{prefix}_diffusive": self.diffusive,
            f"{prefix}_verdict": self.verdict,
            f"{prefix}_fit_window_ps": None if self.window_ps is None else list(self.window_ps),
            f"{prefix}_intercept_A2": self.intercept_A2,
            f"{prefix}_blocks_A2_ps": self.d_blocks_A2_ps,
            f"{prefix}_class": self.verdict_class,
            f"{prefix}_run_needed_ps": self.run_needed_ps,
            f"{prefix}_collective_ratio": self.collective_ratio,
        }


def estimate_diffusion(positions_A: np.ndarray, dt_ps: float, directions=(0, 1, 2),
                       n_blocks: int = 5, slope_min: float = 0.5,
                       msd_atoms: np.ndarray | None = None,
                       blocks: list[np.ndarray] | None = None, method: str = "gls",
                       resolution_A2_ps: float = RESOLUTION_A2_PS) -> Estimate:
    """D of one species with its 95 % interval, or a verdict and an upper bound
    (docs/diffusion.md, "Estimator").

    ``positions_A`` are unwrapped (frames, atoms, 3), Å. Seed 000 eq. 2 with n =
    ``len(directions)``: D = (1/2n) d⟨Δr²⟩/dt, the slope of a straight line with a free
    intercept (the vibrational offset of the MSD, which a fit through the origin turns into
    diffusion).

    ``method="gls"`` (default): over every lag from the end of the vibrational rise to half
    the run, generalised least squares with the modelled covariance of the MSD
    (:mod:`phonion.diffusion_gls`); Student-t interval from the spread of the per-atom
    slopes, widened by the collective ratio. ``"blocks"``: over lags from the diffusive
    onset (:func:`diffusive_start`, ``slope_min``) to half of one of ``n_blocks``
    consecutive time blocks, Student-t interval from the spread of the block slopes
    (assumes nothing about the dynamics, needs ~10× longer runs).

    Verdicts: ``diffusive`` when D is resolved (its 95 % interval excludes 0). Otherwise D
    is ``None`` and ``upper_bound_A2_ps`` the larger of MSD(t)/(2n t) at half the run (every
    displacement counted as diffusion) and the fit's one-sided 95 % upper limit; the
    verdict is ``not_diffusing`` when that bound is below ``resolution_A2_ps`` (the run was
    long enough to see any D the campaign cares about), else ``not_resolved`` with
    ``run_needed_ps``, the run length that would resolve D at the observed trend (the
    standard error falls like 1/√run length).
    """
    dirs = list(directions)
    x = np.asarray(positions_A, dtype=float)[:, :, dirs]
    n_frames, n_atoms, dims = x.shape
    per_atom = msd(x) if msd_atoms is None else msd_atoms[:, :, dirs]
    full = per_atom.mean(axis=1).sum(axis=1)
    half = max((n_frames - 1) // 2, 1)
    upper = float(full[min(half, n_frames - 1)] / (2 * dims * half * dt_ps))
    duration = (n_frames - 1) * dt_ps
    if method == "gls":
        r = diffusion_gls.estimate(x, per_atom, dt_ps)
        d, se, window, intercept = r["d"], r["se"], r["window"], r["intercept"]
        d_blocks, ratio, why = [], r["collective_ratio"], r["why"]
        z_min = float(stats.t.ppf(0.975, r["dof"])) if r["dof"] else 1.96
    else:
        if blocks is not None and len(dirs) < 3:
            blocks = [b[:, :, dirs] for b in blocks]
        d, se, window, intercept, d_blocks, why = blocks_estimate(x, full, dt_ps, n_blocks,
                                                         slope_min, blocks)
        ratio, z_min = None, float(stats.t.ppf(0.975, max(n_blocks - 1, 1)))
    est = Estimate(d, se, None, upper, False, "", window, intercept, d_blocks, n_atoms,
                   dims, "not_resolved", None, ratio)
    if d is not None and se is not None and se > 0 and d >= z_min * se:
        est.ci95_A2_ps = (diffusion_gls.score_interval(d, se, z_min) if method == "gls"
                          else (d - z_min * se, d + z_min * se))
        est.diffusive = True
        est.verdict, est.verdict_class = "diffusive", "diffusive"
        return est
    if d is not None and se is not None and se > 0 and method == "gls":
        # the fit's own 95 % upper limit where it is above the MSD bound (few hops)
        z1 = float(stats.t.ppf(0.95, r["dof"]))
        fit_upper = diffusion_gls.score_interval(d, se, z1)[1] if d > 0 else d + z1 * se
        upper = est.upper_bound_A2_ps = max(upper, fit_upper)
    if d is not None and se is not None and d > 0 and se > 0:  # at the observed trend
        est.run_needed_ps = float(duration * (z_min * se / d) ** 2)
        why = why or f"D = {d:.2e} ± {se:.1e} Å²/ps (1σ): the 95 % interval holds zero"
    elif d is not None and not why:
        why = f"the MSD does not grow over the fitted lags: slope {d:.1e} Å²/ps"
    est.d_A2_ps = est.stderr_A2_ps = None
    if upper < resolution_A2_ps:
        est.verdict_class, est.run_needed_ps = "not_diffusing", None
        est.verdict = (f"does not diffuse: D < {upper * 1e-4:.1e} cm²/s, below the "
                       f"resolution {resolution_A2_ps * 1e-4:.0e} cm²/s, in {duration:.3g} ps"
                       + (f" ({why})" if why else ""))
    else:
        if est.run_needed_ps is not None:
            need = f"; ≈{est.run_needed_ps:.3g} ps would resolve it at the observed trend"
        else:  # no trend yet: even at the bound, D needs ~10 onsets c/(2nD) (calibration)
            est.run_needed_ps = float(10 * full[half] / (2 * dims * upper))
            need = f"; ≥{est.run_needed_ps:.3g} ps would be needed even at the bound"
        est.verdict = (f"not resolved in {duration:.3g} ps: D < {upper * 1e-4:.1e} cm²/s"
                       + (f" ({why})" if why else "") + need)
    return est


def melt_check(positions_host_A: np.ndarray, dt_ps: float, d_threshold_A2_ps: float = 1e-2,
               displacement_threshold_A: float = 4.0, n_blocks: int = 5,
               slope_min: float = 0.5, msd_atoms: np.ndarray | None = None,
               method: str = "gls") -> tuple[bool, str, dict]:
    """Melt/decomposition filter on one host (non-mobile) species (seed 000 §2.4).

    Flagged when the host has reached the diffusive regime with D ≥ ``d_threshold_A2_ps``
    by the default estimator (so its vibrational offset is never read as diffusion), or
    when the median displacement of its atoms between the mean positions of the first and
    last 10 % of the run exceeds ``displacement_threshold_A`` (4 Å: farther than a bonded
    atom gets by the rotation of its polyanion, ≤ twice its bond length).
    Returns (flagged, reason, numbers).
    """
    x = np.asarray(positions_host_A, float)
    est = estimate_diffusion(x, dt_ps, n_blocks=n_blocks, slope_min=slope_min,
                             msd_atoms=msd_atoms, method=method)
    k = max(len(x) // 10, 1)
    shift = np.linalg.norm(x[-k:].mean(axis=0) - x[:k].mean(axis=0), axis=1)
    numbers = {"d_A2_ps": est.d_A2_ps, "diffusive": est.diffusive,
               "median_displacement_A": float(np.median(shift)),
               "max_displacement_A": float(shift.max())}
    if est.diffusive and est.d_A2_ps >= d_threshold_A2_ps:
        return True, (f"host D {est.d_A2_ps:.2e} Å²/ps ≥ {d_threshold_A2_ps:g} in the diffusive "
                      "regime: melted or decomposed"), numbers
    if numbers["median_displacement_A"] > displacement_threshold_A:
        return True, (f"median host displacement {numbers['median_displacement_A']:.2f} Å > "
                      f"{displacement_threshold_A:g} Å: melted or decomposed"), numbers
    return False, "", numbers


def _mobile_positions(traj: dict, mobile_symbol: str) -> tuple[np.ndarray, np.ndarray]:
    """Symbols and drift-corrected positions: the host (framework) centre is held fixed,
    as in pymatgen's DiffusionAnalyzer."""

    symbols = symbols_of(traj["numbers"])
    mobile = symbols == mobile_symbol
    if not mobile.any():
        raise PhonionError(f"no {mobile_symbol} atoms in the trajectory")
    pos = np.asarray(traj["positions_A"], float)
    if (~mobile).any():
        pos = pos - pos[:, ~mobile].mean(axis=1, keepdims=True)
    return symbols, pos


def d_avg_converged(traj: dict, s: DiffusionSettings, target_rel_stderr: float,
                    min_duration_ps: float = 5.0) -> tuple[bool, dict]:
    """Stopping rule of adaptive MD: has the mobile ion reached the diffusive regime, with
    stderr(D_avg)/D_avg below ``target_rel_stderr``, in a run of ``min_duration_ps`` or more?
    Same estimator as :func:`analyze_trajectory` (``gls`` by default: its standard error
    uses every lag to half the run, so a run stops ~10× earlier than with ``blocks``)."""
    symbols, pos = _mobile_positions(traj, s.mobile_ion)
    dt = float(traj["frame_dt_ps"])
    duration = dt * (len(pos) - 1)
    est = _species_estimate(pos[:, symbols == s.mobile_ion], None, dt, s)
    rel = est.stderr_A2_ps / est.d_A2_ps if est.diffusive else None
    info = {"duration_ps": round(duration, 4), "d_avg_A2_ps": est.d_A2_ps,
            "rel_stderr": None if rel is None else round(rel, 4), "verdict": est.verdict,
            "class": est.verdict_class, "estimator": s.estimator}
    return bool(duration >= min_duration_ps and rel is not None
                and rel < target_rel_stderr), info


def _seed000(m: np.ndarray, dt: float, s: DiffusionSettings, directions=(0, 1, 2)) -> dict:
    """Seed 000 eq. 2 literally: through the origin over ``s.window`` (the ``seed000``
    estimator), in the keys of :meth:`Estimate.as_dict`."""
    try:
        d = diffusion_coefficient(m, dt, s.window, directions, False, s.weighting)
    except TrajectoryTooShort as exc:
        return {"d": None, "se": None, "ci": None, "window": None, "why": str(exc)}
    return {"d": d.d_A2_ps, "se": d.stderr_A2_ps, "ci": d.ci95_A2_ps, "window": d.window_ps,
            "why": ""}


def _method(s: DiffusionSettings) -> str:
    """The estimator that decides diffusive or not (seed000 replaces only the number)."""
    return "blocks" if s.estimator == "blocks" else "gls"


def _species_estimate(pos: np.ndarray, m: np.ndarray | None, dt: float,
                      s: DiffusionSettings, directions=(0, 1, 2),
                      blocks: list[np.ndarray] | None = None) -> Estimate:
    est = estimate_diffusion(pos, dt, directions, s.n_blocks, s.diffusive_slope, m, blocks,
                             _method(s), s.resolution_cm2_s * 1e4)
    if s.estimator == "seed000" and est.diffusive:  # the paper's number, once diffusive
        old = _seed000(msd(pos) if m is None else m, dt, s, directions)
        if old["d"] is not None:
            est.d_A2_ps, est.stderr_A2_ps = old["d"], old["se"]
            est.ci95_A2_ps, est.window_ps = old["ci"], old["window"]
            est.intercept_A2 = 0.0
    return est


def md_vibrational_msd(traj: dict, result: dict) -> float | None:
    """The mobile ion's vibrational ⟨u_α²⟩ in an MD (Å², per direction, mean over its atoms:
    the convention of the harmonic ``msd_mobile_mean_A2``). When D is not resolved, the
    mean square displacement of each ion about its time-averaged position, from the raw
    positions (the MD holds the centre of mass fixed, as the harmonic modes without the Γ
    translations do; the diffusion analysis's host-centre correction would add the host's
    own vibration). When D is resolved, the vibrational offset c of D's fit MSD = c + 6Dt
    (the vibrational part of the MSD levels off at 2⟨|u|²⟩ = 6⟨u_α²⟩): c/6, or None for
    the seed000 estimator (no offset) or an offset that is not positive."""
    symbols = symbols_of(traj["numbers"])
    pos = np.asarray(traj["positions_A"], float)[:, symbols == result["mobile_ion"]]
    if len(pos) < 2:
        return None
    if not result.get("diffusive"):
        return float(((pos - pos.mean(axis=0)) ** 2).mean())
    # diffusive: the vibrational offset of D's own fit (generalised least squares weighs
    # the lags by their covariance; a plain line through the MSD is dominated by the noise
    # of the long lags). It is of the host-centred positions (the host centre's own
    # vibration, ~1/N_host of a host atom's, rides along); seed000 fits through the origin.
    c = result.get("d_avg_intercept_A2")
    if result.get("estimator") == "seed000" or c is None or c <= 0:
        return None
    return float(c) / 6.0


def analyze_trajectory(traj: dict, s: DiffusionSettings = DiffusionSettings(),
                       acoustic_cutoff_THz: float | None = None) -> tuple[dict, dict]:
    """Diffusion scalars and arrays of one trajectory (:func:`phonion.formats.read_trajectory`
    layout; AIMD or any ASE-readable trajectory parsed into the same layout works unchanged).

    Positions are corrected for the drift of the host (framework) centre, as in
    pymatgen's DiffusionAnalyzer, before the MSD is taken. D_avg (n = 3) and D along each
    axis (n = 1) by :func:`estimate_diffusion`; when D of the mobile ion is not resolved the
    result gives an upper bound instead, with ``diffusion_class`` ``not_diffusing`` or
    ``not_resolved`` (and ``run_needed_ps``). Every host species goes through
    :func:`melt_check`. With the material's harmonic ``acoustic_cutoff_THz`` the ratio of
    the mobile-ion VDOS centre to it (seed 000 Fig. 3) is reported too. A run shorter than
    ``min_duration_ps`` is marked ``too_short`` (kept out of campaign statistics by
    default).
    """
    ion = s.mobile_ion
    symbols, pos = _mobile_positions(traj, ion)
    mobile = symbols == ion
    dt = float(traj["frame_dt_ps"])
    m_mob = msd(pos[:, mobile])
    blocks = (block_msds(pos[:, mobile], s.n_blocks)  # once for D_avg and the 3 directions
              if s.estimator == "blocks" else None)
    d_avg = _species_estimate(pos[:, mobile], m_mob, dt, s, blocks=blocks)
    d_dir = [_species_estimate(pos[:, mobile], m_mob, dt, s, (a,), blocks) for a in range(3)]
    fastest = int(np.argmax([d.d_A2_ps if d.diffusive else -1 / d.upper_bound_A2_ps
                             for d in d_dir]))
    duration = dt * (len(pos) - 1)
    temps = traj.get("temperature_K")
    target = traj.get("target_temperature_K")
    out: dict = {
        "mobile_ion": ion, "n_mobile_atoms": int(mobile.sum()),
        "n_frames": int(len(pos)), "frame_dt_ps": dt, "duration_ps": duration,
        "estimator": s.estimator,
        "n_blocks": s.n_blocks if s.estimator == "blocks" else None,
        "diffusive": d_avg.diffusive, "diffusion_verdict": d_avg.verdict,
        "diffusion_class": d_avg.verdict_class, "run_needed_ps": d_avg.run_needed_ps,
        **d_avg.as_dict("d_avg"),
        **d_dir[fastest].as_dict("d_max_direction"),
        "d_max_direction_axis": "xyz"[fastest],
        "d_directions_A2_ps": [d.d_A2_ps for d in d_dir],
        "temperature_mean_K": None if temps is None else float(np.mean(temps)),
        "temperature_target_K": None if target is None else float(target),
        "mobile_ion_density_per_A3": float(mobile.sum() / abs(np.linalg.det(traj["cell_A"]))),
    }
    if s.estimator != "seed000":  # its bias, measured on every run (docs/diffusion.md)
        out["d_avg_seed000_A2_ps"] = _seed000(m_mob, dt, s)["d"]
    arrays = {"time_ps": np.arange(len(pos)) * dt}
    melted, why = False, ""
    for name in sorted(set(symbols)):
        sel = symbols == name
        m = m_mob if name == ion else msd(pos[:, sel])
        arrays[f"msd/{name}_A2"] = m.mean(axis=1)  # (frames, 3)
        if name != ion:
            flag, reason, numbers = melt_check(
                pos[:, sel], dt, s.melt_d_threshold_A2_ps, s.melt_displacement_A, s.n_blocks,
                s.diffusive_slope, m, _method(s))
            out[f"d_{name}_A2_ps"] = numbers["d_A2_ps"]
            out[f"median_displacement_{name}_A"] = numbers["median_displacement_A"]
            if flag and not melted:
                melted, why = True, f"{name}: {reason}"
        if traj.get("velocities_A_ps") is not None:
            freq, g = vdos(traj["velocities_A_ps"][:, sel], dt)
            arrays[f"vdos/{name}"] = g
            arrays["vdos/frequency_THz"] = freq
            f_max = vdos_support_max(freq, g)
            out[f"vdos_centre_{name}_THz"] = vdos_centre(freq, g, f_max)
            out[f"vdos_support_max_{name}_THz"] = f_max
    out["vdos_centre_mobile_THz"] = out.get(f"vdos_centre_{ion}_THz")
    if s.anharmonic_descriptors and traj.get("velocities_A_ps") is not None:
        from .anharmonic import anharmonic_descriptors

        T = target if target is not None else out["temperature_mean_K"]
        if duration < s.min_duration_ps:
            # the VDOS of a short run is resolved to 1/duration only (6.7 THz at 0.15 ps):
            # its thermodynamics and mean frequencies would be descriptors of the window
            out["anharmonic_reason"] = (f"run of {duration:.2f} ps < diffusion."
                                        "min_duration_ps: VDOS not resolved")
        elif T:
            out["anharmonic"], more = anharmonic_descriptors(traj, ion, float(T), symbols)
            arrays.update(more)
    if acoustic_cutoff_THz and out["vdos_centre_mobile_THz"]:
        out["acoustic_cutoff_THz"] = acoustic_cutoff_THz
        out["vdos_centre_over_acoustic_cutoff"] = (out["vdos_centre_mobile_THz"]
                                                   / acoustic_cutoff_THz)
    out["too_short"] = duration < s.min_duration_ps
    out["melted"] = melted
    out["melt_reason"] = why
    if melted:
        out["status"], out["reason"] = "failed", why
    elif not d_avg.diffusive:
        out["status"] = "ok"
        out["reason"] = f"{ion}: {d_avg.verdict}"
    else:
        out["status"], out["reason"] = "ok", ""
    if out["too_short"] and not melted:
        out["reason"] = "; ".join(filter(None, [out["reason"], (
            f"run of {duration:.2f} ps < diffusion.min_duration_ps: kept out of campaign "
            "statistics")]))
    return out, arrays
