"""PCA and k-means of the standardised descriptors (seed 003), thin over scikit-learn.

Each descriptor is centred and scaled to unit variance (``StandardScaler``), so the
components weigh descriptors by correlation, not by unit. PCA gives the explained variance
and the loadings; k-means (``n_init`` restarts, ``random_state`` = the configured seed:
deterministic) runs for each k of the configured range, and k is chosen by the largest mean
silhouette (the elbow of the inertia is plotted beside it).
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from ..settings_campaign import CampaignClusteringSettings


def usable_matrix(frame, columns) -> tuple[np.ndarray, list[str], list[int], list[str]]:
    """(X, kept columns, kept row positions, dropped columns with reason): columns without
    spread or with more than half of the values missing are dropped, then rows with a
    missing value."""
    kept, dropped = [], []
    for c in columns:
        v = frame[c].to_numpy(float)
        finite = np.isfinite(v)
        if finite.sum() < max(2, 0.5 * len(v)):
            dropped.append(f"{c} (too few values)")
        elif np.ptp(v[finite]) == 0:
            dropped.append(f"{c} (constant)")
        else:
            kept.append(c)
    X = frame[kept].to_numpy(float) if kept else np.empty((len(frame), 0))
    rows = [i for i in range(len(frame)) if np.all(np.isfinite(X[i]))]
    return X[rows], kept, rows, dropped


def pca(X: np.ndarray) -> dict:
    """Standardise and run PCA: explained variance ratios, loadings (components ×
    descriptors) and scores."""
    Z = StandardScaler().fit_transform(X)
    p = PCA().fit(Z)
    return {"explained_variance_ratio": p.explained_variance_ratio_,
            "loadings": p.components_, "scores": p.transform(Z)}


def kmeans_scan(X: np.ndarray, k_range: tuple[int, int], seed: int = 0,
                n_init: int = 10) -> dict:
    """k-means of the standardised X for each k in [k_min, k_max] (k < number of rows):
    inertia and mean silhouette per k, the k of the largest silhouette and its labels."""
    Z = StandardScaler().fit_transform(X)
    ks, inertia, silhouette, labels = [], [], [], {}
    for k in range(int(k_range[0]), int(k_range[1]) + 1):
        if k < 2 or k >= len(Z):
            continue
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(Z)
        ks.append(k)
        inertia.append(float(km.inertia_))
        silhouette.append(float(silhouette_score(Z, km.labels_))
                          if len(set(km.labels_)) > 1 else float("nan"))
        labels[k] = km.labels_.astype(int)
    if not ks:
        return {"k": [], "inertia": [], "silhouette": [], "best_k": None, "labels": None}
    sil = np.array(silhouette)
    best = ks[int(np.nanargmax(sil))] if np.isfinite(sil).any() else ks[0]
    return {"k": ks, "inertia": inertia, "silhouette": silhouette, "best_k": best,
            "labels": labels[best]}


def campaign_clustering(mats, descriptors,
                        s: CampaignClusteringSettings = CampaignClusteringSettings()
                        ) -> tuple[dict, list]:
    """PCA + k-means of the materials table (k over ``s.k_range``, seed ``s.seed``): the
    result and per-material rows (id, cluster, PC1..PC3)."""
    k_range, seed = s.k_range, s.seed
    X, kept, rows, dropped = usable_matrix(mats, descriptors)
    out: dict = {"descriptors": kept, "dropped": dropped, "n_materials": len(rows),
                 "seed": seed, "k_range": list(k_range)}
    if len(rows) < 3 or len(kept) < 2:
        out["skipped"] = (f"{len(rows)} materials with {len(kept)} usable descriptors: "
                          "PCA and k-means need >= 3 materials and >= 2 descriptors")
        return out, []
    p = pca(X)
    scan = kmeans_scan(X, k_range, seed)
    out.update({"explained_variance_ratio": p["explained_variance_ratio"].tolist(),
                "loadings": {f"PC{i + 1}": dict(zip(kept, comp.tolist(), strict=True))
                             for i, comp in enumerate(p["loadings"][:3])},
                "k": scan["k"], "inertia": scan["inertia"], "silhouette": scan["silhouette"],
                "best_k": scan["best_k"]})
    labels = scan["labels"]
    per = []
    for n, i in enumerate(rows):
        row = {"id": mats["id"].iloc[i],
               "cluster": int(labels[n]) if labels is not None else -1}
        for c in range(min(3, p["scores"].shape[1])):
            row[f"PC{c + 1}"] = float(p["scores"][n, c])
        per.append(row)
    if labels is not None:
        out["cluster_sizes"] = {str(c): int(np.sum(labels == c)) for c in sorted(set(labels))}
    return out, per
