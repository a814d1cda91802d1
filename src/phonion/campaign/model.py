"""An ML model of diffusion: log10 D regression and a superionic classifier from three
feature sets — phonon descriptors only, structure + elastic only, all — the comparison
that is the scientific point of seed 000.

Random forests (scikit-learn; median imputation of missing descriptors inside the
pipeline, so the imputer sees only training rows). Cross-validation is grouped by reduced
composition (``GroupKFold``): duplicates and polymorphs of one composition never sit on
both sides of a split. Permutation importances are computed on each held-out fold and
averaged. The uncertainty of a prediction is the standard deviation over the trees of the
forest fitted on every valid material. Below ``campaign.model_min_materials`` materials
with a valid D the model is not fitted and the result says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance
from sklearn.metrics import balanced_accuracy_score, mean_absolute_error, r2_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline

from ..settings_campaign import CampaignModelSettings
from .table import ANHARMONIC_PREFIX, ELASTIC_PREFIX, PHONON_PREFIX, STRUCTURE_PREFIX

TARGET = "log10_d_avg_cm2_s"


def feature_sets(columns) -> dict[str, list[str]]:
    """phonon / structure_elastic / all: the numeric descriptor columns of each family; with
    MD-VDOS descriptors in ``columns`` also ``anharmonic`` (those alone) and
    ``all_anharmonic`` (all of them): seed 003's "harmonic" against "anharmonic" models."""
    phonon = [c for c in columns if c.startswith(PHONON_PREFIX)]
    structure = [c for c in columns if c.startswith((STRUCTURE_PREFIX, ELASTIC_PREFIX))]
    sets = {"phonon": phonon, "structure_elastic": structure, "all": phonon + structure}
    anharmonic = [c for c in columns if c.startswith(ANHARMONIC_PREFIX)]
    if anharmonic:
        sets.update(anharmonic=anharmonic, all_anharmonic=phonon + structure + anharmonic)
    return sets


def grouped_folds(groups, n_splits: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """GroupKFold splits with at most as many folds as groups (>= 2)."""
    groups = np.asarray(groups)
    k = min(int(n_splits), len(set(groups)))
    if k < 2:
        raise ValueError("grouped cross-validation needs >= 2 compositions")
    return list(GroupKFold(n_splits=k).split(np.zeros(len(groups)), groups=groups))


def _regressor(seed: int, n_estimators: int):
    # keep_empty_features: a column with no value in one CV fold's training rows stays
    # (imputed 0, ignored by the trees) instead of shrinking X to fewer columns than the
    # held-out rows have
    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                         RandomForestRegressor(n_estimators=n_estimators, random_state=seed,
                                               min_samples_leaf=2))


def _classifier(seed: int, n_estimators: int):
    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                         RandomForestClassifier(n_estimators=n_estimators, random_state=seed,
                                                min_samples_leaf=2,
                                                class_weight="balanced"))


#: A descriptor known for fewer training materials than this is not learned from.
MIN_KNOWN = 3


def _usable(columns, frame) -> list[str]:
    """The columns with a value for at least :data:`MIN_KNOWN` of the training rows (one
    known for a single material, e.g. the phonon descriptors of the only material through
    the phonon screen, is a constant after imputation)."""
    return [c for c in columns if np.isfinite(frame[c].to_numpy(float)).sum() >= MIN_KNOWN]


def tree_spread(pipe, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over the forest's trees of the predictions for X."""
    imputed = pipe[:-1].transform(X)
    per_tree = np.array([t.predict(imputed) for t in pipe[-1].estimators_])
    return per_tree.mean(axis=0), per_tree.std(axis=0)


def fit_feature_set(train, candidates, features, threshold_log10: float, seed: int,
                    n_splits: int, n_estimators: int) -> tuple[dict, list[dict], list[dict]]:
    """Grouped CV scores, CV parity rows, permutation importances and predictions with an
    uncertainty for ``candidates`` (rows without a valid D) of one feature set."""
    X = train[features].to_numpy(float)
    y = train[TARGET].to_numpy(float)
    groups = train["reduced_formula"].to_numpy()
    cls = y >= threshold_log10
    folds = grouped_folds(groups, n_splits)
    pred = np.full(len(y), np.nan)
    pred_cls = np.full(len(y), -1)
    importances = []
    classify = len(set(cls)) == 2
    for tr, te in folds:
        reg = _regressor(seed, n_estimators).fit(X[tr], y[tr])
        pred[te] = reg.predict(X[te])
        if len(te) >= 2:
            imp = permutation_importance(reg, X[te], y[te], n_repeats=10, random_state=seed,
                                         scoring="neg_mean_absolute_error")
            importances.append(imp.importances_mean)
        if classify and len(set(cls[tr])) == 2:
            pred_cls[te] = _classifier(seed, n_estimators).fit(X[tr], cls[tr]).predict(X[te])
    out = {"features": features, "n_folds": len(folds),
           "cv_r2": float(r2_score(y, pred)), "cv_mae_log10": float(mean_absolute_error(y, pred))}
    done = pred_cls >= 0
    if classify and done.any():
        out["cv_balanced_accuracy"] = float(balanced_accuracy_score(cls[done],
                                                                    pred_cls[done].astype(bool)))
    else:
        out["classifier_skipped"] = ("every valid material is on one side of the superionic "
                                     "threshold" if not classify else "no fold had both classes")
    if importances:
        mean = np.mean(importances, axis=0)
        out["permutation_importance"] = dict(sorted(zip(features, mean.tolist(), strict=True),
                                                    key=lambda kv: -kv[1]))
    parity = [{"id": i, "temperature_K": T, "log10_d_true": float(a), "log10_d_cv": float(b)}
              for i, T, a, b in zip(train["id"], train["temperature_K"], y, pred, strict=True)]
    reg = _regressor(seed, n_estimators).fit(X, y)
    predictions = []
    if len(candidates):
        mean, std = tree_spread(reg, candidates[features].to_numpy(float))
        proba = (_classifier(seed, n_estimators).fit(X, cls)
                 .predict_proba(candidates[features].to_numpy(float))[:, 1]
                 if classify else np.full(len(candidates), float(cls[0])))
        for i, m, s, pr in zip(candidates["id"], mean, std, proba, strict=True):
            predictions.append({"id": i, "log10_d_pred": float(m), "log10_d_std": float(s),
                                "p_superionic": float(pr)})
    return out, parity, predictions


def campaign_model(table, temperature_K: float | None,
                   s: CampaignModelSettings = CampaignModelSettings()) -> tuple[dict, list, list]:
    """The model stage: at the chosen temperature, train on the rows usable in fits and
    predict the materials with descriptors but no usable D. Returns (result, CV parity
    rows, prediction rows); the result holds ``skipped`` with its reason below
    ``s.model_min_materials``."""
    min_materials, threshold_cm2_s = s.model_min_materials, s.superionic_threshold_cm2_s
    seed, n_splits, n_estimators, descriptors = s.seed, s.cv_splits, s.n_estimators, s.descriptors
    from .table import descriptor_columns, materials_table

    out: dict = {"temperature_K": temperature_K, "min_materials": min_materials,
                 "superionic_threshold_cm2_s": threshold_cm2_s, "seed": seed,
                 "target": TARGET}
    if temperature_K is None:
        out["skipped"] = "no MD temperature and no external D in the table: n valid = 0"
        return out, [], []
    at_T = table[table["temperature_K"] == temperature_K]
    train = at_T[at_T["use_in_fits"] & np.isfinite(at_T[TARGET].astype(float))]
    n = train["id"].nunique()
    out["n_valid_materials"] = int(n)
    if n < min_materials:
        out["skipped"] = (f"n valid = {n} materials with a usable D at {temperature_K:g} K "
                          f"< campaign.model_min_materials = {min_materials}: no model fitted")
        return out, [], []
    if train["reduced_formula"].nunique() < 2:
        out["skipped"] = "one composition only: grouped cross-validation impossible"
        return out, [], []
    cols = descriptor_columns(table, descriptors)
    trained = set(train["id"])
    # the candidates' descriptors at this temperature where they have an MD row there (the
    # anharmonic ones are per temperature), else their material row
    candidates = materials_table(pd.concat([at_T, table]))
    candidates = candidates[~candidates["id"].isin(trained)]
    sets = {}
    parity, predictions = [], []
    for name, features in feature_sets(cols).items():
        features = _usable(features, train)
        if not features:
            sets[name] = {"skipped": "no descriptor of this family known for >= "
                                     f"{MIN_KNOWN} training materials"}
            continue
        cand = candidates[candidates[features].notna().any(axis=1)]
        res, par, pred = fit_feature_set(train, cand, features, float(np.log10(threshold_cm2_s)),
                                         seed, n_splits, n_estimators)
        sets[name] = res
        parity += [{"feature_set": name, **r} for r in par]
        predictions += [{"feature_set": name, **r} for r in pred]
    out["feature_sets"] = sets
    return out, parity, predictions
