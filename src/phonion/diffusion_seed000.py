"""Seed 000 eq. 2 as written: the diffusion coefficient as the slope through the origin of
the MSD over a fixed window of lags (the ``seed000`` estimator of
:mod:`phonion.diffusion`, kept for comparison with the paper)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .errors import PhonionError


class TrajectoryTooShort(PhonionError):
    """Too few frames in the fit window for a slope."""



@dataclass
class Diffusion:
    """D (Å²/ps) of one species, its standard error and 95 % interval, and the fit window."""

    d_A2_ps: float
    stderr_A2_ps: float
    ci95_A2_ps: tuple[float, float]
    n_atoms: int
    window_ps: tuple[float, float]
    dimensions: int

    def as_dict(self, prefix: str) -> dict:
        return {
            f"{prefix}_A2_ps": self.d_A2_ps,
            f"{prefix}_stderr_A2_ps": self.stderr_A2_ps,
            f"{prefix}_ci95_A2_ps": list(self.ci95_A2_ps),
            f"{prefix}_cm2_s": self.d_A2_ps * 1e-4,
        }


def diffusion_coefficient(msd_atoms: np.ndarray, dt_ps: float, window: tuple[float, float]
                          = (0.1, 0.5), directions=(0, 1, 2), intercept: bool = False,
                          weighting: str = "inverse_time") -> Diffusion:
    """Seed 000 eq. 2, D = (1/2n) dMSD/dt, from per-atom MSDs (frames, atoms, 3).

    The slope is fitted over lag times from ``window[0]`` to ``window[1]`` of the run
    (fractions; the default skips the ballistic/vibrational start and the noisy long lags
    with few time origins), through the origin unless ``intercept``. ``directions``
    selects Cartesian components: all three for D_avg (n = 3), one for a single direction
    (n = 1). ``weighting="inverse_time"`` weights each lag by 1/t (the variance of a
    random walk's MSD grows like t), ``"none"`` weights all lags equally (as
    pymatgen-analysis-diffusion's DiffusionAnalyzer does by default). The interval is the
    spread of per-atom slopes, blind to correlated atoms and to the bias of a fit through
    the origin: this is the ``seed000`` estimator, kept for reproducing seed 000; the
    default is :func:`estimate_diffusion`.
    """
    n_frames, n_atoms, _ = msd_atoms.shape
    t = np.arange(n_frames) * dt_ps
    lo, hi = int(window[0] * (n_frames - 1)), int(window[1] * (n_frames - 1))
    lo = max(lo, 1)
    if hi - lo < 2:
        raise TrajectoryTooShort(
            f"the fit window {window} holds {max(hi - lo + 1, 0)} of {n_frames} frames (< 3); "
            "run longer (md.production_steps) or widen diffusion.window")
    dims = len(directions)
    y = msd_atoms[lo:hi + 1][:, :, list(directions)].sum(axis=2)  # (frames, atoms)
    tt = t[lo:hi + 1]
    w = 1.0 / tt if weighting == "inverse_time" else np.ones_like(tt)
    if intercept:
        A = np.column_stack([tt, np.ones_like(tt)]) * np.sqrt(w)[:, None]
        slopes = np.linalg.lstsq(A, y * np.sqrt(w)[:, None], rcond=None)[0][0]
    else:
        slopes = (w * tt) @ y / ((w * tt) @ tt)
    d_i = slopes / (2 * dims)
    d = float(d_i.mean())
    se = float(d_i.std(ddof=1) / np.sqrt(n_atoms)) if n_atoms > 1 else float("nan")
    half = float(stats.t.ppf(0.975, n_atoms - 1) * se) if n_atoms > 1 else float("nan")
    return Diffusion(d, se, (d - half, d + half), n_atoms, (float(tt[0]), float(tt[-1])), dims)
