"""Which materials' polyanions rotate: seed 001's classifier (Fig. 2b) over the campaign.

Every MD run with polyanions gets seed 001's category in the ``dynamics`` stage
(:func:`phonion.dynamics.rotation_diffusion_category`: 1 rotation and diffusion, 2 rotation
without diffusion, 3 no rotation). Here, at one temperature, the materials with a category
are labelled rotating (1, 2) or not (3) and a logistic regression learns the label from
the structure and elastic descriptors (seed 001: structural, geometric, electrostatic and
elemental features; its best model was a logistic regression):

* features correlated above |r| = 0.9 with an earlier one are dropped (seed 001);
* standardised features, L2-regularised logistic regression with balanced class weights
  (scikit-learn); the F1 score and balanced accuracy of grouped cross-validation (folds by
  reduced composition, as the diffusion model);
* SHAP values of the model fitted on all materials, in log-odds: for a linear model with
  an independent (interventional) background the Shapley values are exact and closed-form,
  φ_ij = w_j (x_ij − ⟨x_j⟩) (Lundberg & Lee, NeurIPS 2017, "Linear SHAP"), so no sampling
  and no extra package is needed — the test checks them against a brute-force Shapley sum
  over all feature subsets. Features are ranked by mean |φ|.

Below ``model_min_materials`` materials with a category, or with one class only, the
classifier is not fitted and the result says why.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .table import ELASTIC_PREFIX, STRUCTURE_PREFIX

CATEGORY = "rotation_diffusion_category"


def nonredundant(frame: pd.DataFrame, columns: list[str], max_abs_r: float = 0.9
                 ) -> list[str]:
    """``columns`` without those correlated above ``max_abs_r`` (Pearson, pairwise
    complete) with an earlier kept one, and without constant ones."""
    kept: list[str] = []
    for c in columns:
        x = frame[c].astype(float)
        if x.nunique(dropna=True) < 2:
            continue
        if all(abs(x.corr(frame[k].astype(float))) <= max_abs_r for k in kept):
            kept.append(c)
    return kept


def linear_shap(coef: np.ndarray, X: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Exact interventional Shapley values of f(x) = coef·x + b: φ_ij = coef_j (x_ij −
    ⟨background_j⟩) (rows of ``X`` × features)."""
    return np.asarray(coef)[None, :] * (np.asarray(X) - np.asarray(background).mean(axis=0))


def rotation_classifier(table: pd.DataFrame, temperature_K: float | None,
                        min_materials: int = 12, cv_splits: int = 5, seed: int = 0
                        ) -> tuple[dict, list[dict]]:
    """The classifier at ``temperature_K`` (the campaign model's): result (F1, balanced
    accuracy, coefficients, mean |SHAP| ranking, counts per category) and the SHAP rows
    for the figure (id, feature, standardised value, SHAP). ``skipped`` with the reason
    when it cannot be fitted."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, f1_score

    from .model import grouped_folds

    out: dict = {"temperature_K": temperature_K, "min_materials": min_materials,
                 "method": "logistic regression, standardised features, balanced weights; "
                           "exact linear SHAP (log-odds)"}
    if CATEGORY not in table or temperature_K is None:
        out["skipped"] = ("no MD run with polyanions analysed (dynamics.reorientation "
                          "gives seed 001's categories)")
        return out, []
    rows = table[(table["temperature_K"] == temperature_K) & table[CATEGORY].notna()]
    rows = rows.drop_duplicates("id")
    counts = rows[CATEGORY].astype(int).value_counts().to_dict()
    out["n_by_category"] = {str(k): int(v) for k, v in sorted(counts.items())}
    y = rows[CATEGORY].astype(int).isin([1, 2]).to_numpy()
    if len(rows) < min_materials:
        out["skipped"] = (f"{len(rows)} materials with a rotation category at "
                          f"{temperature_K:g} K < campaign.model_min_materials = "
                          f"{min_materials}")
        return out, []
    if y.all() or not y.any():
        out["skipped"] = "one class only: every material " + (
            "rotates" if y.all() else "keeps its polyanions still")
        return out, []
    candidates = [c for c in rows.columns if c.startswith((STRUCTURE_PREFIX, ELASTIC_PREFIX))
                  and pd.to_numeric(rows[c], errors="coerce").notna().sum() >= 3]
    features = nonredundant(rows, candidates)
    if not features:
        out["skipped"] = "no structure or elastic descriptor varies between these materials"
        return out, []
    X = rows[features].astype(float)
    X = X.fillna(X.median())
    mean, std = X.mean().to_numpy(), X.std(ddof=0).replace(0, 1).to_numpy()
    Z = (X.to_numpy() - mean) / std

    def model():
        return LogisticRegression(class_weight="balanced", max_iter=1000, random_state=seed)

    try:
        folds = grouped_folds(rows["reduced_formula"], cv_splits)
    except ValueError as exc:
        out["skipped"] = str(exc)
        return out, []
    pred = np.zeros(len(y), dtype=bool)
    for train, test in folds:
        if len(set(y[train])) < 2:  # a fold without one class: predict its majority
            pred[test] = y[train][0]
            continue
        pred[test] = model().fit(Z[train], y[train]).predict(Z[test])
    fitted = model().fit(Z, y)
    phi = linear_shap(fitted.coef_[0], Z, Z)
    ranking = dict(sorted(zip(features, np.abs(phi).mean(axis=0).tolist(), strict=True),
                          key=lambda kv: -kv[1]))
    out.update({"n_materials": int(len(y)), "n_rotating": int(y.sum()),
                "features": features, "n_folds": len(folds),
                "cv_f1": float(f1_score(y, pred)),
                "cv_balanced_accuracy": float(balanced_accuracy_score(y, pred)),
                "coefficients_standardised": dict(zip(features, fitted.coef_[0].tolist(),
                                                      strict=True)),
                "mean_abs_shap": ranking})
    shap_rows = [{"id": mid, "feature": f, "value_standardised": float(Z[i, j]),
                  "shap_log_odds": float(phi[i, j])}
                 for i, mid in enumerate(rows["id"]) for j, f in enumerate(features)]
    return out, shap_rows
