"""PCA and k-means of the campaign equal scikit-learn called directly, and are deterministic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from phonion.campaign.clustering import campaign_clustering, kmeans_scan, pca
from phonion.settings_campaign import CampaignClusteringSettings


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0, 0, 0], [6, 6, 0, 0], [0, 6, 6, 6]], float)
    X = np.vstack([c + rng.normal(scale=0.5, size=(8, 4)) for c in centres])
    return X * np.array([1.0, 100.0, 0.01, 3.0])  # units that standardisation must remove


def test_pca_matches_scikit_learn_on_standardised_data(blobs):
    Z = StandardScaler().fit_transform(blobs)
    ref = PCA().fit(Z)
    out = pca(blobs)
    assert out["explained_variance_ratio"] == pytest.approx(ref.explained_variance_ratio_)
    assert np.allclose(np.abs(out["loadings"]), np.abs(ref.components_))
    assert np.allclose(out["scores"], ref.transform(Z))


def test_kmeans_matches_scikit_learn_and_finds_three_clusters(blobs):
    scan = kmeans_scan(blobs, (2, 6), seed=3)
    Z = StandardScaler().fit_transform(blobs)
    for k, inertia, sil in zip(scan["k"], scan["inertia"], scan["silhouette"], strict=True):
        km = KMeans(n_clusters=k, n_init=10, random_state=3).fit(Z)
        assert inertia == pytest.approx(km.inertia_)
        assert sil == pytest.approx(silhouette_score(Z, km.labels_))
    assert scan["best_k"] == 3
    labels = scan["labels"]
    assert sorted(np.bincount(labels)) == [8, 8, 8]
    assert all(len(set(labels[i:i + 8])) == 1 for i in (0, 8, 16))


def test_clustering_is_deterministic_with_a_seed(blobs):
    mats = pd.DataFrame(blobs, columns=["ph_a", "ph_b", "st_c", "st_d"])
    mats.insert(0, "id", [f"m{i}" for i in range(len(mats))])
    mats["st_const"] = 1.0  # dropped: no spread
    one = campaign_clustering(mats, ["ph_a", "ph_b", "st_c", "st_d", "st_const"],
                              CampaignClusteringSettings(k_range=(2, 5), seed=11))
    two = campaign_clustering(mats, ["ph_a", "ph_b", "st_c", "st_d", "st_const"],
                              CampaignClusteringSettings(k_range=(2, 5), seed=11))
    assert one == two
    out, per = one
    assert out["dropped"] == ["st_const (constant)"] and out["best_k"] == 3
    assert out["cluster_sizes"] == {"0": 8, "1": 8, "2": 8} and len(per) == 24
    assert sum(out["explained_variance_ratio"]) == pytest.approx(1.0)


def test_too_few_materials_are_said_not_fitted():
    mats = pd.DataFrame({"id": ["a", "b"], "ph_x": [1.0, 2.0], "ph_y": [3.0, 1.0]})
    out, per = campaign_clustering(mats, ["ph_x", "ph_y"])
    assert "skipped" in out and per == []
