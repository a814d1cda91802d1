"""The ML model of diffusion: grouped CV never splits a composition, a skip below the
configured minimum, predictions with an uncertainty for materials without a usable D."""

from __future__ import annotations

import numpy as np
import pandas as pd

from phonion.campaign.model import campaign_model, feature_sets, grouped_folds
from phonion.settings_campaign import CampaignModelSettings

#: small forests for speed; ten materials are enough for the model to be fitted
FAST = CampaignModelSettings(model_min_materials=10, seed=0, cv_splits=5, n_estimators=50)
FASTER = CampaignModelSettings(model_min_materials=10, seed=0, cv_splits=5, n_estimators=20)


def _table(n=30, seed=0):
    rng = np.random.default_rng(seed)
    comps = [f"Na{i % 10}X" for i in range(n)]  # 10 compositions, 3 polymorphs each
    msd = rng.uniform(0.01, 0.06, n)
    t = pd.DataFrame({
        "id": [f"{c}-{i}" for i, c in enumerate(comps)], "reduced_formula": comps,
        "temperature_K": 800.0, "ph_msd_mobile_mean_800K_A2": msd,
        "ph_acoustic_cutoff_THz": rng.uniform(2, 6, n), "st_mobile_cn": rng.integers(4, 8, n),
        "st_volume_per_atom_A3": rng.uniform(15, 30, n),
    })
    t["log10_d_avg_cm2_s"] = -7.5 + 60 * msd + rng.normal(scale=0.1, size=n)
    t["d_valid"] = True
    t["use_in_fits"] = True
    return t


def test_grouped_folds_never_put_one_composition_on_both_sides():
    groups = np.repeat([f"c{i}" for i in range(7)], [1, 2, 3, 4, 2, 1, 3])
    folds = grouped_folds(groups, 5)
    assert len(folds) == 5
    seen = []
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])
        seen += list(test)
    assert sorted(seen) == list(range(len(groups)))  # every row tested once
    assert len(grouped_folds(groups[:3], 5)) == 2  # at most as many folds as compositions


def test_model_learns_msd_dependence_and_ranks_candidates():
    table = _table()
    # three materials with descriptors but a flagged (unusable) D: the candidates
    table.loc[27:, ["use_in_fits", "d_valid"]] = False
    out, parity, predictions = campaign_model(table, 800.0, FAST)
    assert out["n_valid_materials"] == 27
    sets = out["feature_sets"]
    assert set(sets) == {"phonon", "structure_elastic", "all"}
    assert sets["phonon"]["cv_r2"] > 0.5 > sets["structure_elastic"]["cv_r2"]
    assert next(iter(sets["phonon"]["permutation_importance"])) == "ph_msd_mobile_mean_800K_A2"
    assert {p["id"] for p in predictions} == set(table["id"][27:])
    assert all(p["log10_d_std"] >= 0 and 0 <= p["p_superionic"] <= 1 for p in predictions)
    assert {r["id"] for r in parity if r["feature_set"] == "all"} == set(table["id"][:27])
    again = campaign_model(table, 800.0, FAST)
    assert again == (out, parity, predictions)  # deterministic with a seed


def test_below_the_minimum_the_model_says_so_and_fits_nothing():
    table = _table(n=30)
    table.loc[5:, ["use_in_fits", "d_valid"]] = False  # flagged runs are not training data
    out, parity, predictions = campaign_model(
        table, 800.0, CampaignModelSettings(model_min_materials=12))
    assert out["skipped"].startswith("n valid = 5 materials")
    assert parity == [] and predictions == []


def test_feature_sets_split_by_family():
    sets = feature_sets(["ph_a", "st_b", "el_c", "other"])
    assert sets == {"phonon": ["ph_a"], "structure_elastic": ["st_b", "el_c"],
                    "all": ["ph_a", "st_b", "el_c"]}


def test_a_family_known_for_one_material_is_skipped_not_an_error():
    """Issue 24: 29 compositions with an external D and one through the phonon screen
    ended in "Found array with 0 feature(s)"; the phonon family is now skipped with its
    reason and the structure family is still fitted."""
    table = _table()
    table.loc[1:, ["ph_msd_mobile_mean_800K_A2", "ph_acoustic_cutoff_THz"]] = np.nan
    out, parity, _ = campaign_model(table, 800.0, FASTER)
    sets = out["feature_sets"]
    assert "known for >= 3 training materials" in sets["phonon"]["skipped"]
    assert "cv_r2" in sets["structure_elastic"] and "cv_r2" in sets["all"]
    assert sets["all"]["features"] == ["st_mobile_cn", "st_volume_per_atom_A3"]
    # three materials know the phonon descriptors: the family is fitted, and a CV fold whose
    # training rows hold none of them keeps its columns (imputed) instead of failing
    table.loc[[0, 1, 2], "ph_acoustic_cutoff_THz"] = [2.0, 3.0, 4.0]
    table["reduced_formula"] = ["A", "A", "A"] + list(table["reduced_formula"][3:])
    out, _, _ = campaign_model(table, 800.0, FASTER)
    assert "cv_r2" in out["feature_sets"]["phonon"]
