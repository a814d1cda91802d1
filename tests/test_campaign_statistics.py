"""Campaign statistics against scipy, a direct bootstrap and a hand-worked BH example."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from phonion.campaign.statistics import (
    benjamini_hochberg,
    bootstrap_ci,
    bootstrap_indices,
    campaign_statistics,
    correlation,
    correlogram,
)
from phonion.settings_campaign import CampaignStatisticsSettings

QUICK = CampaignStatisticsSettings(n_bootstrap=100)  # fewer resamples: a faster test



@pytest.fixture
def xy():
    rng = np.random.default_rng(42)
    x = rng.normal(size=25)
    return x, 0.6 * x + rng.normal(scale=0.8, size=25)


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_coefficients_and_p_values_match_scipy(xy, method):
    x, y = xy
    ref = stats.pearsonr(x, y) if method == "pearson" else stats.spearmanr(x, y)
    r, p, n = correlation(x, y, method)
    assert n == 25
    assert r == pytest.approx(ref[0], abs=1e-12) and p == pytest.approx(ref[1], rel=1e-10)
    # missing values are dropped pairwise
    x2, y2 = np.append(x, np.nan), np.append(y, 1.0)
    assert correlation(x2, y2, method)[:2] == pytest.approx((r, p))
    assert np.isnan(correlation(x[:2], y[:2], method)[0])  # n < 3: no coefficient


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_bootstrap_interval_equals_a_direct_resampling_loop(xy, method):
    x, y = xy
    n_boot, seed = 400, 7
    idx = bootstrap_indices(len(x), n_boot, seed)
    direct = []
    for row in idx:  # the same draws, one scipy call each
        xs, ys = x[row], y[row]
        direct.append((stats.pearsonr(xs, ys) if method == "pearson"
                       else stats.spearmanr(xs, ys))[0])
    lo, hi = np.quantile(direct, [0.025, 0.975])
    assert bootstrap_ci(x, y, method, n_boot, seed) == pytest.approx((lo, hi), abs=1e-10)
    # seeded: the same interval twice, another seed another interval
    assert bootstrap_ci(x, y, method, n_boot, seed) == bootstrap_ci(x, y, method, n_boot, seed)
    assert bootstrap_ci(x, y, method, n_boot, seed + 1) != bootstrap_ci(x, y, method, n_boot,
                                                                          seed)
    r = correlation(x, y, method)[0]
    assert lo < r < hi


def test_benjamini_hochberg_matches_a_hand_example():
    # m = 5, sorted p: 0.01 0.02 0.03 0.04 0.50 → p·m/rank: 0.05 0.05 0.05 0.05 0.50;
    # q = running minimum from the top: 0.05 0.05 0.05 0.05 0.50
    p = [0.04, 0.50, 0.01, 0.03, 0.02]
    q, sig = benjamini_hochberg(p, alpha=0.05)
    assert q == pytest.approx([0.05, 0.5, 0.05, 0.05, 0.05])
    assert sig.tolist() == [True, False, True, True, True]
    # a step-up case: 0.01 0.04 0.045 → 0.03 0.06 0.045 → q 0.03 0.045 0.045
    q, sig = benjamini_hochberg([0.045, 0.01, 0.04, np.nan], alpha=0.04)
    assert q[:3] == pytest.approx([0.045, 0.03, 0.045]) and np.isnan(q[3])
    assert sig.tolist() == [False, True, False, False]
    # and scipy agrees where it can
    assert q[:3] == pytest.approx(stats.false_discovery_control([0.045, 0.01, 0.04]))


def test_correlogram_is_symmetric_and_marks_bh_significance(xy):
    x, y = xy
    rng = np.random.default_rng(1)
    data = {"a": x, "b": y, "noise": rng.normal(size=25)}
    gram = correlogram(data, n_boot=200, seed=0)
    r = np.array(gram["pearson"]["r"], float)
    assert np.allclose(r, r.T) and np.allclose(np.diag(r), 1)
    assert r[0, 1] == pytest.approx(stats.pearsonr(x, y)[0])
    assert gram["pearson"]["significant"][0][1] and not gram["pearson"]["significant"][0][2]
    assert gram["pearson"]["ci95_low"][0][1] < r[0, 1] < gram["pearson"]["ci95_high"][0][1]


def test_d_correlations_use_only_rows_usable_in_fits():
    rng = np.random.default_rng(3)
    n = 12
    msd = rng.uniform(0.01, 0.05, n)
    table = pd.DataFrame({
        "id": [f"m{i}" for i in range(n)], "temperature_K": 800.0, "ph_msd": msd,
        "log10_d_avg_cm2_s": -6 + 40 * msd, "log10_d_max_cm2_s": -5.8 + 40 * msd,
        "d_valid": [True] * 8 + [False] * 4, "flagged": [False] * 8 + [True] * 4,
    })
    table["use_in_fits"] = table["d_valid"]
    table.loc[8:, "log10_d_avg_cm2_s"] = -1.0  # plateau values of flagged runs: never used
    out, rows = campaign_statistics(table, ["ph_msd"], QUICK)
    entry = out["versus_d"]["800"]
    assert entry["n_valid"] == 8 and entry["n_flagged"] == 4
    assert entry["D_avg"]["pearson"]["ph_msd"]["n"] == 8
    assert entry["D_avg"]["pearson"]["ph_msd"]["r"] == pytest.approx(1.0)
    none = table.assign(use_in_fits=False, d_valid=False)
    out, _ = campaign_statistics(none, ["ph_msd"], QUICK)
    assert out["versus_d"]["800"]["D_avg"]["skipped"].startswith("n valid = 0")
