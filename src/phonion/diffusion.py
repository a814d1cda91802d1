"""Diffusion: mean-square displacement, diffusion coefficients with uncertainties, the
melt/decomposition filter and the vibrational density of states (seed 000 §2.4, eqs. 1, 2, 7).

Verbs: :func:`msd` (time-origin-averaged MSD by FFT, per atom and direction),
:func:`estimate_diffusion` (the default estimator: seed 000 eq. 2 as the slope of a
free-intercept fit in the diffusive regime, the regime found from the data, a Student-t
95 % interval from consecutive time blocks, and the verdict "no long-range diffusion
detected" with an upper bound when the ion never leaves its vibrational plateau),
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

from .correlations import msd, vdos, vdos_centre, vdos_support_max  # noqa: F401 - API
from .diffusion_seed000 import (  # noqa: F401 - API
    Diffusion,
    TrajectoryTooShort,
    diffusion_coefficient,
)
from .errors import PhonionError
from .geometry import symbols_of
from .settings import DiffusionSettings

#: Lags per fitted block as a fraction of the block length: every lag of the fit keeps at
#: least half of the block's time origins.
BLOCK_LAG_FRACTION = 0.5
#: A pair of lags k and ~1.25 k gives one local log-log slope of the MSD.
_SLOPE_RATIO = 1.25


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
        }


def loglog_slope(msd_mean: np.ndarray, last: int) -> tuple[np.ndarray, np.ndarray]:
    """Local slope s(k) = d ln MSD / d ln t at frame lags k = 1 .. ``last`` (1 random walk,
    2 ballistic, 0 a plateau), from lags k and ≈1.25 k (one frame apart at least)."""
    k = np.arange(1, last + 1)
    k2 = np.minimum(np.maximum(k + 1, np.rint(_SLOPE_RATIO * k).astype(int)), len(msd_mean) - 1)
    m = np.clip(msd_mean, 1e-300, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.log(m[k2] / m[k]) / np.log(k2 / k)
    return k, s


def diffusive_start(msd_mean: np.ndarray, last: int, slope_min: float) -> int | None:
    """First frame lag of the diffusive regime, or ``None`` before lag ``last``.

    Criterion (documented in docs/diffusion.md): the MSD has left the ballistic rise (local
    log-log slope below 1.5) and, from that lag to ``last``, grows at least like
    t^slope_min. For MSD(t) = c + 2nDt, s = 2nDt/(c + 2nDt): s ≥ 0.5 means diffusion has
    moved the ion at least as far as its vibrational offset c. A plateau (s ≈ 0) never
    qualifies; the regime must span at least a factor 2 in lag (start ≤ last/2).
    """
    k, s = loglog_slope(msd_mean, last)
    below = np.nonzero(s < 1.5)[0]
    if not len(below):
        return None
    ok = s >= slope_min
    ok[: below[0]] = False
    if not ok[-1]:
        return None
    bad = np.nonzero(~ok)[0]
    start = int(k[bad[-1] + 1]) if len(bad) else int(k[0])
    return start if start <= last // 2 else None


def _fit_slopes(msd_mean: np.ndarray, lo: int, hi: int) -> tuple[float, float]:
    """Unweighted least-squares slope and intercept of the MSD over frame lags lo..hi."""
    lags = np.arange(lo, hi + 1, dtype=float)
    slope, intercept = np.polyfit(lags, msd_mean[lo:hi + 1], 1)
    return float(slope), float(intercept)


def block_msds(positions_A: np.ndarray, n_blocks: int) -> list[np.ndarray]:
    """MSD per atom and direction of each of ``n_blocks`` consecutive time blocks."""
    x = np.asarray(positions_A, dtype=float)
    block = len(x) // n_blocks
    return [msd(x[b * block:(b + 1) * block]) for b in range(n_blocks)] if block > 1 else []


def estimate_diffusion(positions_A: np.ndarray, dt_ps: float, directions=(0, 1, 2),
                       n_blocks: int = 5, slope_min: float = 0.5,
                       msd_atoms: np.ndarray | None = None,
                       blocks: list[np.ndarray] | None = None) -> Estimate:
    """D of one species by the default estimator: free-intercept fit in the diffusive
    regime, uncertainty from time blocks (docs/diffusion.md, "Estimator").

    ``positions_A`` are unwrapped (frames, atoms, 3), Å. Seed 000 eq. 2 with n =
    ``len(directions)``: D = (1/2n) d⟨Δr²⟩/dt, here the slope of a straight line with a free
    intercept (the vibrational offset of the MSD, which a fit through the origin turns into
    diffusion) over frame lags [k_start, k_end]. k_end = half of a block (the run is cut
    into ``n_blocks`` consecutive blocks), k_start from :func:`diffusive_start`. The same
    fit in each block gives D_b; the blocks are independent runs to a good approximation
    (each much longer than the correlation time of the ion motion), so their spread holds
    every correlation — between lags, between atoms, collective hops — that the spread of
    per-atom slopes misses. D is the mean of the D_b, its standard error std(D_b)/√B and the
    95 % interval Student-t with B − 1 degrees of freedom (calibrated in
    tests/test_diffusion_coverage.py on four kinds of dynamics).

    Not diffusive (no diffusive regime before k_end, or an interval that holds 0): D is
    ``None`` and ``upper_bound_A2_ps`` = MSD(t_max)/(2n t_max) at the longest lag with half
    the run's origins — every displacement counted as diffusion, so D cannot be larger.
    """
    dirs = list(directions)
    x = np.asarray(positions_A, dtype=float)
    n_frames, n_atoms, dims = len(x), x.shape[1], len(dirs)
    full = (msd(x[:, :, dirs]) if msd_atoms is None else msd_atoms[:, :, dirs])
    full = full.sum(axis=2).mean(axis=1)
    half = max((n_frames - 1) // 2, 1)
    upper = float(full[half] / (2 * dims * half * dt_ps))
    block = n_frames // n_blocks
    k_end = int(BLOCK_LAG_FRACTION * block)

    def none(verdict: str) -> Estimate:
        return Estimate(None, None, None, upper, False, verdict, None, None, [], n_atoms, dims)

    if n_blocks < 2 or k_end < 4:
        return none(f"no long-range diffusion detected: {n_frames} frames are too few for "
                    f"{n_blocks} blocks of 8+ frames; run longer")
    k_start = diffusive_start(full, k_end, slope_min)
    if k_start is None:
        return none(f"no long-range diffusion detected: the MSD does not reach the diffusive "
                    f"regime (log-log slope ≥ {slope_min:g} over a factor 2 in lag) within "
                    f"{k_end * dt_ps:.3g} ps lags")
    d_blocks = []
    for m in blocks if blocks is not None else block_msds(x[:, :, dirs], n_blocks):
        m = m[:, :, dirs] if m.shape[2] == 3 and dims < 3 else m
        d_blocks.append(_fit_slopes(m.sum(axis=2).mean(axis=1), k_start, k_end)[0]
                        / (2 * dims * dt_ps))
    d_b = np.array(d_blocks)
    d = float(d_b.mean())
    se = float(d_b.std(ddof=1) / np.sqrt(n_blocks))
    half_width = float(stats.t.ppf(0.975, n_blocks - 1) * se)
    intercept = _fit_slopes(full, k_start, k_end)[1]
    window = (k_start * dt_ps, k_end * dt_ps)
    if d - half_width <= 0:
        out = none(f"no long-range diffusion detected: D = {d:.2e} ± {half_width:.1e} Å²/ps "
                   "(95 %) holds zero")
        out.window_ps, out.d_blocks_A2_ps, out.intercept_A2 = window, d_blocks, intercept
        return out
    return Estimate(d, se, (d - half_width, d + half_width), upper, True,
                    "diffusive", window, intercept, d_blocks, n_atoms, dims)


def melt_check(positions_host_A: np.ndarray, dt_ps: float, d_threshold_A2_ps: float = 1e-2,
               displacement_threshold_A: float = 4.0, n_blocks: int = 5,
               slope_min: float = 0.5, msd_atoms: np.ndarray | None = None
               ) -> tuple[bool, str, dict]:
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
                             msd_atoms=msd_atoms)
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
    Same estimator as :func:`analyze_trajectory`."""
    symbols, pos = _mobile_positions(traj, s.mobile_ion)
    dt = float(traj["frame_dt_ps"])
    duration = dt * (len(pos) - 1)
    est = estimate_diffusion(pos[:, symbols == s.mobile_ion], dt, n_blocks=s.n_blocks,
                             slope_min=s.diffusive_slope)
    rel = est.stderr_A2_ps / est.d_A2_ps if est.diffusive else None
    info = {"duration_ps": round(duration, 4), "d_avg_A2_ps": est.d_A2_ps,
            "rel_stderr": None if rel is None else round(rel, 4), "verdict": est.verdict}
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


def _species_estimate(pos: np.ndarray, m: np.ndarray, dt: float, s: DiffusionSettings,
                      directions=(0, 1, 2), blocks: list[np.ndarray] | None = None
                      ) -> Estimate:
    est = estimate_diffusion(pos, dt, directions, s.n_blocks, s.diffusive_slope, m, blocks)
    if s.estimator == "seed000" and est.diffusive:  # the paper's number, once diffusive
        old = _seed000(m, dt, s, directions)
        if old["d"] is not None:
            est.d_A2_ps, est.stderr_A2_ps = old["d"], old["se"]
            est.ci95_A2_ps, est.window_ps = old["ci"], old["window"]
            est.intercept_A2 = 0.0
    return est


def analyze_trajectory(traj: dict, s: DiffusionSettings = DiffusionSettings(),
                       acoustic_cutoff_THz: float | None = None) -> tuple[dict, dict]:
    """Diffusion scalars and arrays of one trajectory (:func:`phonion.formats.read_trajectory`
    layout; AIMD or any ASE-readable trajectory parsed into the same layout works unchanged).

    Positions are corrected for the drift of the host (framework) centre, as in
    pymatgen's DiffusionAnalyzer, before the MSD is taken. D_avg (n = 3) and D along each
    axis (n = 1) by :func:`estimate_diffusion`; when the mobile ion has not reached the
    diffusive regime the result says "no long-range diffusion detected" and gives an upper
    bound instead of a D. Every host species goes through :func:`melt_check`. With the
    material's harmonic ``acoustic_cutoff_THz`` the ratio of the mobile-ion VDOS centre to
    it (seed 000 Fig. 3) is reported too. A run shorter than ``min_duration_ps`` is marked
    ``too_short`` (kept out of campaign statistics by default).
    """
    ion = s.mobile_ion
    symbols, pos = _mobile_positions(traj, ion)
    mobile = symbols == ion
    dt = float(traj["frame_dt_ps"])
    m_mob = msd(pos[:, mobile])
    blocks = block_msds(pos[:, mobile], s.n_blocks)  # once for D_avg and the 3 directions
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
        "estimator": s.estimator, "n_blocks": s.n_blocks,
        "diffusive": d_avg.diffusive, "diffusion_verdict": d_avg.verdict,
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
                s.diffusive_slope, m)
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
        out["reason"] = (f"{ion}: {d_avg.verdict}; D < {d_avg.upper_bound_A2_ps * 1e-4:.1e} "
                         f"cm²/s in {duration:.3g} ps")
    else:
        out["status"], out["reason"] = "ok", ""
    if out["too_short"] and not melted:
        out["reason"] = "; ".join(filter(None, [out["reason"], (
            f"run of {duration:.2f} ps < diffusion.min_duration_ps: kept out of campaign "
            "statistics")]))
    return out, arrays
