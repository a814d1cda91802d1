"""The ``blocks`` diffusion estimator (docs/diffusion.md, "Estimator"): a free-intercept
fit of the MSD over lags from the diffusive onset to half of one of ``n_blocks`` consecutive
time blocks, its 95 % interval Student-t from the spread of the block slopes. It assumes
nothing about the dynamics but needs runs ~10× longer than the ``gls`` default
(:mod:`phonion.diffusion_gls`); the local log-log slope of the MSD serves both.
"""

from __future__ import annotations

import numpy as np

from .correlations import msd

#: Lags per fitted block as a fraction of the block length: every lag of the fit keeps at
#: least half of the block's time origins.
BLOCK_LAG_FRACTION = 0.5
#: A pair of lags k and ~1.25 k gives one local log-log slope of the MSD.
_SLOPE_RATIO = 1.25


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


def blocks_estimate(x: np.ndarray, full: np.ndarray, dt_ps: float, n_blocks: int, slope_min: float,
            blocks: list[np.ndarray] | None) -> tuple:
    """The ``blocks`` estimator (D, se, window, intercept, D per block, why); see
    :func:`phonion.diffusion.estimate_diffusion`. Each block is an independent run to a good
    approximation, so the spread of the block slopes holds every correlation (calibrated in
    tests/test_diffusion_coverage.py)."""
    n_frames, _, dims = x.shape
    block = n_frames // n_blocks
    k_end = int(BLOCK_LAG_FRACTION * block)
    if n_blocks < 2 or k_end < 4:
        return (None, None, None, None, [],
                f"{n_frames} frames are too few for {n_blocks} blocks of 8+ frames")
    k_start = diffusive_start(full, k_end, slope_min)
    if k_start is None:
        return (None, None, None, None, [],
                f"the MSD does not reach the diffusive regime (log-log slope ≥ "
                f"{slope_min:g} over a factor 2 in lag) within {k_end * dt_ps:.3g} ps lags")
    d_blocks = []
    for m in blocks if blocks is not None else block_msds(x, n_blocks):
        d_blocks.append(_fit_slopes(m.sum(axis=2).mean(axis=1), k_start, k_end)[0]
                        / (2 * dims * dt_ps))
    d_b = np.array(d_blocks)
    se = float(d_b.std(ddof=1) / np.sqrt(n_blocks))
    return (float(d_b.mean()), se, (k_start * dt_ps, k_end * dt_ps),
            _fit_slopes(full, k_start, k_end)[1], d_blocks, "")
