"""Seed 001's polyanion-rotation classifier (phonion.campaign.rotation): exact SHAP values
against a brute-force Shapley sum, and the classifier on a campaign table whose rotation
is decided by one descriptor."""

from __future__ import annotations

from itertools import combinations
from math import factorial

import numpy as np
import pandas as pd
import pytest

from phonion.campaign.rotation import linear_shap, nonredundant, rotation_classifier


def _brute_force_shapley(f, x: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Shapley values of f at x with the interventional value function
    v(S) = E_background[f(x_S, B_rest)], summed over every subset."""
    n = len(x)
    phi = np.zeros(n)

    def v(subset):
        z = background.copy()
        z[:, list(subset)] = x[list(subset)]
        return f(z).mean()

    for j in range(n):
        others = [k for k in range(n) if k != j]
        for size in range(n):
            for s in combinations(others, size):
                w = factorial(size) * factorial(n - size - 1) / factorial(n)
                phi[j] += w * (v((*s, j)) - v(s))
    return phi


def test_linear_shap_is_the_exact_shapley_value():
    rng = np.random.default_rng(0)
    background = rng.normal(size=(50, 4)) * [1.0, 2.0, 0.5, 3.0] + [0.0, 1.0, -2.0, 0.5]
    coef, b = np.array([0.7, -1.2, 2.0, 0.1]), 0.3
    X = rng.normal(size=(5, 4))
    ours = linear_shap(coef, X, background)
    for i in range(len(X)):
        ref = _brute_force_shapley(lambda z: z @ coef + b, X[i], background)
        np.testing.assert_allclose(ours[i], ref, atol=1e-12)
    # efficiency: the values sum to f(x) − E[f]
    np.testing.assert_allclose(ours.sum(axis=1), X @ coef - (background @ coef).mean())


def _table(n=36, seed=1):
    """A campaign table at 800 K: polyanions rotate where the volume per atom is large
    (with some noise), the other descriptors are noise; one is a copy of the volume."""
    rng = np.random.default_rng(seed)
    vpa = rng.uniform(15, 30, n)
    rot = vpa + rng.normal(0, 1.5, n) > 22
    diffuse = rng.random(n) < 0.5
    cat = np.where(~rot, 3, np.where(diffuse, 1, 2))
    return pd.DataFrame({
        "id": [f"m{i}" for i in range(n)], "reduced_formula": [f"F{i}" for i in range(n)],
        "temperature_K": 800.0, "rotation_diffusion_category": cat.astype(float),
        "st_volume_per_atom_A3": vpa, "st_volume_copy": 2 * vpa + 1,
        "st_mobile_cn": rng.uniform(3, 8, n), "el_bulk_modulus_GPa": rng.uniform(10, 60, n),
        "polyanion_C_half_run_min": np.where(rot, 0.5, 0.98),
        "mobile_tmsd_A2": np.where(diffuse, 12.0, 1.0)})


def test_rotation_classifier_finds_the_descriptor_that_decides():
    out, shap = rotation_classifier(_table(), 800.0, min_materials=12)
    assert "skipped" not in out, out.get("skipped")
    assert "st_volume_copy" not in out["features"]  # |r| = 1 with the volume: dropped
    assert next(iter(out["mean_abs_shap"])) == "st_volume_per_atom_A3"
    assert out["coefficients_standardised"]["st_volume_per_atom_A3"] > 0  # larger rotates
    assert out["cv_f1"] > 0.8 and out["n_materials"] == 36
    assert len(shap) == 36 * len(out["features"])


def test_rotation_classifier_says_why_it_is_not_fitted(tmp_path):
    from phonion.campaign.figures import rotation_figure

    out, _ = rotation_classifier(_table(n=8), 800.0, min_materials=12)
    assert "8 materials with a rotation category" in out["skipped"]
    one = _table()
    one["rotation_diffusion_category"] = 3.0
    out, _ = rotation_classifier(one, 800.0, min_materials=12)
    assert out["skipped"].startswith("one class only")
    out, _ = rotation_classifier(one.drop(columns="rotation_diffusion_category"), 800.0)
    assert "no MD run with polyanions" in out["skipped"]
    # the figure draws the categories and the classifier's SHAP values (or its reason)
    table = _table()
    fit, shap = rotation_classifier(table, 800.0, min_materials=12)
    assert rotation_figure(table, {"rotation_classifier": {**fit, "shap": shap}}, 800.0,
                           tmp_path / "rotation")
    assert (tmp_path / "rotation.png").stat().st_size > 10_000
    assert not rotation_figure(table.drop(columns="rotation_diffusion_category"), {}, 800.0,
                               tmp_path / "none")


def test_nonredundant_keeps_the_first_of_correlated_columns():
    frame = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [2.0, 4, 6, 8.1], "c": [1.0, 0, 1, 0],
                          "d": [5.0, 5, 5, 5]})
    assert nonredundant(frame, ["a", "b", "c", "d"]) == ["a", "c"]
    assert pytest.approx(frame["a"].corr(frame["b"]), abs=1e-3) == 1.0
