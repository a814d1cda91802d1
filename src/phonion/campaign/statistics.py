"""Correlation statistics with honest uncertainty (docs/campaign.md).

Pearson r (linear association; p-value from the t distribution, assumes bivariate
normality) and Spearman ρ (monotonic association; rank-based) from scipy, each with a
percentile bootstrap 95 % interval (materials resampled with replacement, seeded RNG) and
Benjamini–Hochberg control of the false-discovery rate over a family of tests. Pairs use
the rows where both values are finite (pairwise-complete).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ..settings_campaign import CampaignStatisticsSettings

METHODS = ("pearson", "spearman")

#: Fewest pairs for which a coefficient is computed (a p-value needs n >= 3).
MIN_PAIRS = 3


def _pairs(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def correlation(x, y, method: str = "pearson") -> tuple[float, float, int]:
    """(coefficient, two-sided p-value, n pairs) from scipy; NaN when n < 3 or a variable is
    constant."""
    x, y = _pairs(x, y)
    n = len(x)
    if n < MIN_PAIRS or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan"), n
    res = stats.pearsonr(x, y) if method == "pearson" else stats.spearmanr(x, y)
    return float(res[0]), float(res[1]), n


def _rowwise_pearson(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of X and Y (bootstrap samples); NaN for a constant row."""
    Xc = X - X.mean(axis=1, keepdims=True)
    Yc = Y - Y.mean(axis=1, keepdims=True)
    den = np.sqrt((Xc**2).sum(axis=1) * (Yc**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (Xc * Yc).sum(axis=1) / den, np.nan)


def bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) row indices drawn with replacement from ``np.random.default_rng(seed)``."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def bootstrap_ci(x, y, method: str = "pearson", n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the coefficient: resample the pairs with
    replacement ``n_boot`` times; degenerate resamples (a constant variable) are left
    out. (NaN, NaN) with fewer than 3 pairs."""
    x, y = _pairs(x, y)
    n = len(x)
    if n < MIN_PAIRS:
        return float("nan"), float("nan")
    idx = bootstrap_indices(n, n_boot, seed)
    X, Y = x[idx], y[idx]
    if method == "spearman":
        X, Y = stats.rankdata(X, axis=1), stats.rankdata(Y, axis=1)
    r = _rowwise_pearson(X, Y)
    r = r[np.isfinite(r)]
    if not len(r):
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(r, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def benjamini_hochberg(p, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(q-values, significant) of the Benjamini–Hochberg step-up procedure over the finite
    p-values in ``p`` (NaN stays NaN and not significant)."""
    p = np.asarray(p, float)
    q = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    m = int(finite.sum())
    if m:
        pf = p[finite]
        order = np.argsort(pf)
        ranked = pf[order] * m / np.arange(1, m + 1)
        qs = np.minimum.accumulate(ranked[::-1])[::-1]
        out = np.empty(m)
        out[order] = np.minimum(qs, 1.0)
        q[finite] = out
    return q, np.where(finite, q <= alpha, False)


def correlate(x, y, method: str, n_boot: int, seed: int) -> dict:
    """One coefficient with its p-value, n and bootstrap interval."""
    r, p, n = correlation(x, y, method)
    lo, hi = bootstrap_ci(x, y, method, n_boot, seed) if np.isfinite(r) else (np.nan, np.nan)
    return {"r": r, "p": p, "n": n, "ci95_low": lo, "ci95_high": hi}


def correlogram(data: dict[str, np.ndarray], n_boot: int = 1000, seed: int = 0,
                alpha: float = 0.05) -> dict:
    """Pearson and Spearman matrices of every pair of the named columns, with p-values,
    bootstrap intervals and BH significance over the pairs of the upper triangle
    (one family per method). Matrices are lists of rows in the order of ``data``."""
    names = list(data)
    k = len(names)
    out: dict = {"names": names}
    for method in METHODS:
        mats = {key: np.full((k, k), np.nan) for key in ("r", "p", "ci95_low", "ci95_high",
                                                         "q", "n")}
        for i in range(k):
            for j in range(i, k):
                if i == j:
                    n_ii = int(np.isfinite(np.asarray(data[names[i]], float)).sum())
                    for key, v in (("r", 1.0), ("p", 0.0), ("ci95_low", 1.0),
                                   ("ci95_high", 1.0), ("n", n_ii)):
                        mats[key][i, i] = v
                    continue
                c = correlate(data[names[i]], data[names[j]], method, n_boot, seed)
                for key in ("r", "p", "ci95_low", "ci95_high", "n"):
                    mats[key][i, j] = mats[key][j, i] = c[key]
        iu = np.triu_indices(k, 1)
        q, sig = benjamini_hochberg(mats["p"][iu], alpha)
        mats["q"][iu] = q
        mats["q"].T[iu] = q
        significant = np.zeros((k, k), bool)
        significant[iu] = sig
        significant.T[iu] = sig
        out[method] = {key: _nan_to_none(m) for key, m in mats.items()}
        out[method]["significant"] = significant.tolist()
    return out


def versus_target(data: dict[str, np.ndarray], target, n_boot: int = 1000, seed: int = 0,
                  alpha: float = 0.05) -> dict:
    """Each named column against one target (e.g. log10 D): per method a dict name →
    coefficient, p, n, interval, BH q and significance (one family per method)."""
    out: dict = {}
    for method in METHODS:
        rows = {name: correlate(x, target, method, n_boot, seed) for name, x in data.items()}
        q, sig = benjamini_hochberg([r["p"] for r in rows.values()], alpha)
        for (_, row), qi, si in zip(rows.items(), q, sig, strict=True):
            row["q"], row["significant"] = qi, bool(si)
        out[method] = {name: {k: _scalar(v) for k, v in row.items()}
                       for name, row in rows.items()}
    return out


def _scalar(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    v = float(v)
    return v if np.isfinite(v) else None


def _nan_to_none(m: np.ndarray) -> list:
    return [[_scalar(v) for v in row] for row in m]


#: The diffusion targets of the D correlations: table column → label.
TARGETS = {"log10_d_avg_cm2_s": "D_avg", "log10_d_max_cm2_s": "D_max"}


def campaign_statistics(table, descriptors,
                        s: CampaignStatisticsSettings = CampaignStatisticsSettings()
                        ) -> tuple[dict, list[dict]]:
    """The campaign's correlations: the descriptor correlogram over materials, and each
    descriptor against log10 D_avg and log10 D_max at each temperature over the rows usable
    in fits (valid D; flagged ones only with ``campaign.include_flagged``), with
    ``s.n_bootstrap`` bootstrap resamples (seed ``s.seed``) and Benjamini–Hochberg at
    ``s.fdr_alpha``. Returns the result and the same numbers as long-form rows
    (correlations.csv)."""
    from .table import materials_table, per_material

    n_boot, seed, alpha = s.n_bootstrap, s.seed, s.fdr_alpha
    mats = materials_table(table)
    over_materials = per_material(descriptors)  # the MD-VDOS ones only against D, per T
    data = {c: mats[c].to_numpy(float) for c in over_materials}
    gram = correlogram(data, n_boot, seed, alpha)
    rows = []
    for method in METHODS:
        m = gram[method]
        for i, a in enumerate(over_materials):
            for j in range(i + 1, len(over_materials)):
                rows.append({"x": a, "y": over_materials[j], "method": method,
                             "temperature_K": None,
                             **{k: m[k][i][j] for k in ("r", "p", "q", "ci95_low",
                                                         "ci95_high", "n", "significant")}})
    vs_d: dict = {}
    temps = sorted(table["temperature_K"].dropna().unique())
    for T in temps:
        sub = table[(table["temperature_K"] == T) & table["use_in_fits"]]
        entry: dict = {"n_valid": int(sub["d_valid"].sum()), "n_used": len(sub),
                       "n_flagged": int(table[(table["temperature_K"] == T)]["flagged"].sum())}
        for col, label in TARGETS.items():
            y = sub[col].to_numpy(float)
            n = int(np.isfinite(y).sum())
            if n < MIN_PAIRS:
                entry[label] = {"skipped": f"n valid = {n}: skipped (needs >= {MIN_PAIRS} "
                                           "diffusion coefficients: runs flagged too_short "
                                           "or melted, or whose D is not resolved, "
                                           "give none)"}
                continue
            res = versus_target({c: sub[c].to_numpy(float) for c in descriptors}, y,
                                n_boot, seed, alpha)
            entry[label] = res
            for method, per in res.items():
                for name, c in per.items():
                    rows.append({"x": name, "y": label, "method": method,
                                 "temperature_K": float(T), **c})
        vs_d[f"{T:g}"] = entry
    out = {"descriptors": list(descriptors), "n_materials": len(mats),
           "n_bootstrap": n_boot, "seed": seed, "fdr_alpha": alpha,
           "correlogram": gram, "versus_d": vs_d}
    return out, rows
