"""Generalised least squares of the MSD over the whole diffusive regime (docs/diffusion.md,
"Estimator"): the default route to D since the run lengths of real AIMD (20-100 ps) leave
too few time blocks for the block estimator.

The time-origin-averaged MSD at lags k_i is fitted by m(k) = c + 2n D k dt (seed 000 eq. 2
with a free intercept c, the vibrational offset) with the full covariance Σ_ij of the MSD
at the fitted lags. Overlapping time origins make neighbouring lags almost perfectly
correlated; an unweighted fit over long lags would report an interval several times too
narrow. Σ is modelled, per atom and Cartesian direction, for an ion whose site-to-site
motion has independent stationary increments (a Lévy process: a random walk, or Poisson
hops) plus an independent Gaussian position noise at each frame (the vibration about the
instantaneous site). For such motion, with C the covariance of two displacements,

    Cov(Δ², Δ'²) = 2 C² + c4 · overlap,                                           (1)

the Gaussian (Isserlis) term plus the fourth cumulant of the shared part of the two
increments (c4 per frame: 0 for a random walk, 2 r a⁴ for hops of length a at rate r), and
C = σ² · overlap + a_v² (δ terms of coinciding end points). Summing (1) over the pairs of
origins exactly gives Σ for any run length and lag set (:func:`covariance_basis`). This is
the random-walk covariance that kinisi approximates (McCluskey et al., arXiv 2305.18244,
eq. 10) and that Bullerjahn, von Bülow and Hummer derive for Brownian motion with
localisation noise (J. Chem. Phys. 153, 024116 (2020), eqs. 8-12), extended by the
fourth-cumulant term for hops and evaluated by summation instead of closed forms. σ², a_v²
and c4 come from the data (slope, intercept and the excess kurtosis of the displacements);
the fit is iterated twice from an unweighted start, as in those papers.

Atoms are not independent in a superionic conductor (concerted hops): Σ is multiplied by
the inverse Haven-like ratio R = (collective MSD slope)/(self MSD slope) when R > 1,
measured on the same lags. Hand-written because kinisi's Bayesian sampler takes minutes per
trajectory (docs/benchmarks.md) and neither it nor pymatgen models hops or collective
motion.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .diffusion_blocks import loglog_slope

#: The fit uses lags up to this fraction of the run (every lag keeps half of the origins).
MAX_LAG_FRACTION = 0.5
#: The fit starts at this multiple of the lag where the log-log slope of the MSD is lowest.
START_FACTOR = 2.0
#: The start is the first lag whose log-log slope is within this of the lowest.
SLOPE_TOLERANCE = 0.02
#: At most this many lags enter the fit (equally spaced): neighbouring lags carry almost the
#: same information, and Σ of hundreds of lags is numerically singular.
MAX_FIT_LAGS = 40


@dataclass
class GLSFit:
    """Result of :func:`gls_fit`: slope and intercept of the MSD (Å²/frame, Å²), their
    covariance, the inflation applied for collective motion and the degrees of freedom
    of the interval (independent atoms or groups − 1)."""

    slope: float
    intercept: float
    cov: np.ndarray
    collective_ratio: float
    lags: np.ndarray
    dof: float = np.inf


def fit_lags(k_start: int, k_end: int) -> np.ndarray:
    """Up to :data:`MAX_FIT_LAGS` integer lags spread evenly over [k_start, k_end]."""
    n = min(MAX_FIT_LAGS, k_end - k_start + 1)
    return np.unique(np.rint(np.linspace(k_start, k_end, n)).astype(int))


def covariance_basis(n_frames: int, lags: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`_covariance_basis`, computed once per run length and lag set (D_avg, the
    three directions and every host species of a trajectory share it)."""
    return _covariance_basis(int(n_frames), tuple(int(k) for k in lags))


@functools.lru_cache(maxsize=8)
def _covariance_basis(n_frames: int, lags: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Sums over pairs of time origins (s, t) that make Σ of the time-averaged MSD of one
    atom along one direction, for ``n_frames`` frames and the frame ``lags``:

    ``oo`` Σ count·overlap², ``o`` Σ count·overlap, ``od`` Σ count·overlap·D, ``dd``
    Σ count·D², each divided by (N − i)(N − j); D(u) = δ(u, i−j) − δ(u, i) − δ(u, −j) +
    δ(u, 0) are the coinciding end points of the two displacements, u = t − s. Then
    Σ_ij = 2 (σ⁴ oo + 2 σ² a² od + a⁴ dd) + c4 o (eq. 1 of the module docstring).
    """
    n = n_frames
    lags = np.asarray(lags, int)
    j = lags[:, None]
    out = {key: np.zeros((len(lags), len(lags))) for key in ("oo", "o", "od", "dd")}
    for a, i in enumerate(lags):
        u = np.arange(-lags.max(), i + 1)[None, :]
        count = np.clip(np.minimum(n - 1 - i, n - 1 - j - u) - np.maximum(0, -u) + 1, 0, None)
        overlap = np.clip(np.minimum(i, u + j) - np.maximum(0, u), 0, None)
        d = ((u == i - j).astype(float) - (u == i) - (u == -j) + (u == 0))
        norm = (n - i) * (n - j[:, 0]).astype(float)
        out["oo"][a] = (count * overlap.astype(float) ** 2).sum(axis=1) / norm
        out["o"][a] = (count * overlap).sum(axis=1) / norm
        out["od"][a] = (count * overlap * d).sum(axis=1) / norm
        out["dd"][a] = (count * d**2).sum(axis=1) / norm
    return out


def _fourth_cumulant_rate(x: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """c4 per frame for each direction: the slope through the origin of the fourth cumulant
    of one atom's displacement, ⟨Δ⁴⟩ − 3⟨Δ²⟩², against the lag (a Lévy process has it
    linear in time; Gaussian vibration adds nothing), from the first lags of the fit only:
    its statistical error grows like k^1.5 while the cumulant grows like k, and noise in c4
    widens the interval of a Gaussian walk (measured: 45 % with lags over the whole fit,
    docs/diffusion.md). Clipped at 0."""
    probe = np.unique([lags[0], 2 * lags[0], 3 * lags[0]])
    probe = probe[probe <= lags[-1]]
    k4 = []
    for k in probe:
        stride = max(1, int(k) // 4)  # origins closer than k/4 add almost nothing
        dx = x[k::stride] - x[:-k:stride]
        dx2 = dx * dx
        m2 = dx2.mean(axis=(0, 1))
        k4.append((dx2 * dx2).mean(axis=(0, 1)) - 3 * m2**2)
    k4 = np.array(k4)  # (probe, direction)
    return np.clip((probe[:, None] * k4).sum(axis=0) / (probe**2).sum(), 0, None)


def _gls(m: np.ndarray, lags: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares of m = c + b k with covariance ``sigma``: (c, b), cov."""
    x = np.column_stack([np.ones(len(lags)), lags.astype(float)])
    scale = np.sqrt(np.diag(sigma))
    corr = sigma / np.outer(scale, scale)
    w = np.linalg.cholesky(corr + 1e-10 * np.eye(len(lags)))
    xw = np.linalg.solve(w, x / scale[:, None])
    mw = np.linalg.solve(w, m / scale)
    cov = np.linalg.inv(xw.T @ xw)
    return cov @ xw.T @ mw, cov


def gls_fit(positions_A: np.ndarray, msd_atoms: np.ndarray, lags: np.ndarray,
            collective: bool = True) -> GLSFit:
    """Fit m(k) = c + b k to the atom-averaged MSD summed over the given directions.

    ``positions_A`` (frames, atoms, n) unwrapped, ``msd_atoms`` (frames, atoms, n) the MSD
    per atom and direction, ``lags`` the frame lags of the fit. The weights come from Σ of
    :func:`covariance_basis` with σ², a² per direction (from an unweighted fit, then from
    the previous iterate) and c4 from the data. The covariance of (c, b) is the spread of
    the same linear estimator applied to each atom's MSD, divided by the number of atoms
    (a sandwich estimate: right even where the model Σ is not, e.g. for the correlated
    increments of caged motion), times the collective ratio R ≥ 1 when ``collective``.
    With two atoms or fewer the model covariance is used.
    """
    x = np.asarray(positions_A, float)
    n_frames, n_atoms, dims = x.shape
    m_dir = msd_atoms[lags].mean(axis=1)  # (lags, dims)
    m = m_dir.sum(axis=1)
    basis = covariance_basis(n_frames, lags)
    c4 = _fourth_cumulant_rate(x, lags)
    per_dir = [np.polyfit(lags, m_dir[:, d], 1) for d in range(dims)]
    b_dir = np.array([max(p[0], 0.0) for p in per_dir])
    a2_dir = np.array([max(p[1], 0.0) / 2 for p in per_dir])
    beta = np.polyfit(lags, m, 1)[::-1]
    for _ in range(3):
        scale = beta[1] / b_dir.sum() if b_dir.sum() > 0 and beta[1] > 0 else 1.0
        s2 = b_dir * scale
        sigma = sum(2 * (s2[d] ** 2 * basis["oo"] + 2 * s2[d] * a2_dir[d] * basis["od"]
                         + a2_dir[d] ** 2 * basis["dd"]) + c4[d] * basis["o"]
                    for d in range(dims)) / n_atoms
        if not np.all(np.isfinite(sigma)) or np.any(np.diag(sigma) <= 0):
            sigma = np.diag(np.maximum(np.var(m), 1e-12) * np.ones(len(lags)))
        beta, cov = _gls(m, lags, sigma)
    w = _gls_weights(lags, sigma)  # (2, lags): (c, b) = w @ m, linear in the MSD
    if n_atoms > 2:
        per_atom = msd_atoms[lags].sum(axis=2).T @ w.T  # (atoms, 2)
        cov = np.cov(per_atom.T) / n_atoms
    ratio = 1.0
    if collective and n_atoms > 1 and beta[1] > 2 * np.sqrt(cov[1, 1]):
        # the collective slope by the same weights; only where there is a slope to compare
        # with (on a plateau the ratio of two noises means nothing); at most N (all as one)
        from .correlations import msd

        com = msd(x.sum(axis=1, keepdims=True))[:, 0, :].sum(axis=1) / n_atoms
        ratio = float(np.clip((w[1] @ com[lags]) / beta[1], 1.0, n_atoms))
    cov = cov * ratio
    if n_atoms <= 2:
        return GLSFit(float(beta[1]), float(beta[0]), cov, ratio, lags, np.inf)
    # degrees of freedom: the atoms that carry the slope (Kish's effective sample size of
    # the per-atom slopes: few when a handful of hops make D), in independent groups
    b = np.clip(per_atom[:, 1], 0, None)
    n_eff = float(b.sum() ** 2 / (b @ b)) if b.any() else 1.0
    return GLSFit(float(beta[1]), float(beta[0]), cov, ratio, lags,
                  max(n_eff / ratio - 1, 1.0))


def _gls_weights(lags: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """The rows of (XᵀΣ⁻¹X)⁻¹XᵀΣ⁻¹ (intercept, slope) for X = [1, k]."""
    x = np.column_stack([np.ones(len(lags)), lags.astype(float)])
    si = np.linalg.pinv(sigma)
    return np.linalg.solve(x.T @ si @ x, x.T @ si)


def fit_start(msd_mean: np.ndarray, k_end: int) -> int | None:
    """First frame lag of the linear regime m = c + 2nDt: where the local log-log slope of the
    MSD is lowest over lags ≤ k_end/2 — the vibrational rise (ballistic, or caged motion in
    its well) is over and diffusion has not yet taken over the slope — times
    :data:`START_FACTOR`, the margin measured on Brownian motion in a cosine potential,
    whose MSD is still curved at its slope minimum (docs/diffusion.md). The first lag when
    the slope starts near 1 (not 2: ballistic) and does not fall over the first quarter of
    the lags (a bare random walk: no vibrational rise to wait for). ``None`` when the slope
    still falls at k_end/2 (the run never leaves the vibrational rise)."""
    last = k_end // 2
    if last < 2:
        return None
    k, s = loglog_slope(msd_mean, last)
    s = np.where(np.isfinite(s), s, np.inf)
    if 0.9 < s[0] < 1.2 and s[0] - np.median(s[:max(5, len(s) // 4)]) < 0.1:
        return int(k[0])  # no vibrational rise to wait for: MSD ∝ t from the first lag
    i = int(np.argmin(s))
    if s[i] >= 1.5:
        return None
    # the first lag near the minimum: on a flat plateau the noise puts the minimum anywhere
    i = int(np.nonzero(s <= s[i] + SLOPE_TOLERANCE)[0][0])
    if i == len(k) - 1:
        return None
    return max(int(np.ceil(START_FACTOR * k[i])) if i > 0 else int(k[i]), 1)


def estimate(positions_A: np.ndarray, msd_atoms: np.ndarray, dt_ps: float,
             max_lag_fraction: float = MAX_LAG_FRACTION) -> dict:
    """D (Å²/ps) of one species over lags from :func:`fit_start` to ``max_lag_fraction`` of
    the run by :func:`gls_fit`: ``d``, ``se`` (None without a linear regime), ``window``
    (ps), ``intercept`` (Å²), ``collective_ratio``, ``why`` (empty when fitted)."""
    n_frames, _, dims = positions_A.shape
    k_end = int(max_lag_fraction * (n_frames - 1))
    m = msd_atoms.mean(axis=1).sum(axis=1)
    k0 = fit_start(m, k_end)
    none = {"d": None, "se": None, "window": None, "intercept": None, "collective_ratio": None,
            "dof": None}
    if k_end < 4:
        return {**none, "why": f"{n_frames} frames are too few for a fit"}
    if k0 is None or k_end < 2 * k0 or k_end - k0 < 3:  # a factor 2 in lag at least
        return {**none, "why": (f"the MSD is still in its vibrational rise at "
                                f"{k_end // 2 * dt_ps:.3g} ps lags")}
    fit = gls_fit(positions_A, msd_atoms, fit_lags(k0, k_end))
    scale = 1 / (2 * dims * dt_ps)
    return {"d": fit.slope * scale, "se": float(np.sqrt(fit.cov[1, 1])) * scale,
            "window": (k0 * dt_ps, k_end * dt_ps), "intercept": fit.intercept,
            "collective_ratio": fit.collective_ratio, "dof": fit.dof, "why": ""}


def score_interval(d: float, se: float, z: float) -> tuple[float, float]:
    """Interval {D : |d − D| ≤ z·se(D)} with se(D)² = se²·D/d: the variance of the estimate
    grows in proportion to D, as a count of hops does (Wilson's score interval for a
    Poisson rate). Where few hops make the estimate, a low d comes with a low se; the
    interval's upper end then reaches further than d + z·se (measured on collective hops:
    coverage 0.90 → docs/diffusion.md). For se ≪ d it is d ± z·se."""
    a = se * se / d
    centre, half = d + z * z * a / 2, np.sqrt(z * z * a * d + (z * z * a / 2) ** 2)
    return float(centre - half), float(centre + half)
