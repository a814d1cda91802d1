"""Campaign figures (PNG + SVG): correlograms with their p-values, correlations with
D_avg / D_max (seed 000 Fig. S10), seed 000 Figs. 2, 3 and S11 analogues, the PCA biplot,
the k selection of k-means and the model's CV parity plot.

A D-based figure plots only diffusion coefficients usable in fits; runs flagged
``too_short`` / ``melted`` are drawn hollow and grey when they enter (config
``campaign.include_flagged``); with no usable D the figure says "n valid = 0: skipped"
instead of plotting plateau values.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..plots import _save  # noqa: E402
from .families import representatives  # noqa: E402

#: Marker of each D source; MD from this campaign first.
SOURCE_MARKERS = ("o", "s", "^", "D", "v", "P")


def _short(name: str) -> str:
    for p in ("ph_", "st_", "el_"):
        if name.startswith(p):
            return name[len(p):]
    return name


def _skipped(ax, text: str) -> None:
    import textwrap

    text = "\n".join(textwrap.fill(t, 38) for t in text.split("\n"))
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def subset(gram: dict, keep: list[str]) -> dict:
    """The correlogram restricted to the descriptors ``keep`` (names of ``gram``)."""
    idx = [gram["names"].index(n) for n in keep]
    out = {"names": list(keep)}
    for method in ("pearson", "spearman"):
        if method in gram:
            out[method] = {k: [[v[i][j] for j in idx] for i in idx]
                           for k, v in gram[method].items()}
    return out


def correlogram(gram: dict, method: str, cmap: str, base: Path, note: str = "") -> None:
    """Heatmap of the coefficients (BH-significant cells starred) beside the p-values."""
    names = [_short(n) for n in gram["names"]]
    m = gram[method]
    k = len(names)
    fig, axes = plt.subplots(1, 2, figsize=(2 * max(5.0, 0.45 * k + 3.5), max(4.0, 0.4 * k + 2)),
                             layout="constrained")
    if k < 2:
        _skipped(axes[0], f"{k} descriptor(s): no correlogram")
        axes[1].axis("off")
        _save(fig, base)
        return
    r = np.array(m["r"], dtype=float)
    p = np.array(m["p"], dtype=float)
    sig = np.array(m["significant"], bool)
    im = axes[0].imshow(r, cmap=cmap, vmin=-1, vmax=1)
    fig.colorbar(im, ax=axes[0], shrink=0.8, label=f"{method.capitalize()} coefficient")
    im2 = axes[1].imshow(p, cmap="Greys_r", vmin=0, vmax=1)
    fig.colorbar(im2, ax=axes[1], shrink=0.8, label="p-value (two-sided)")
    for ax, title in ((axes[0], f"{method.capitalize()} (* BH significant){note}"),
                      (axes[1], "p-values")):
        ax.set_xticks(range(k), names, rotation=90, fontsize=7)
        ax.set_yticks(range(k), names, fontsize=7)
        ax.set_title(title)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if i != j and np.isfinite(r[i, j]):
                    axes[0].text(j, i, f"{r[i, j]:.2f}{'*' if sig[i, j] else ''}", ha="center",
                                 va="center", fontsize=6)
                if i != j and np.isfinite(p[i, j]):
                    axes[1].text(j, i, f"{p[i, j]:.2g}", ha="center", va="center", fontsize=6,
                                 color="k" if p[i, j] > 0.5 else "w")
    _save(fig, base)


def correlations_with_d(stats: dict, T: float | None, base: Path) -> None:
    """Seed 000 Fig. S10: Pearson r of each descriptor with log10 D_avg and log10 D_max
    at temperature T, bootstrap 95 % intervals as error bars."""
    entry = stats["versus_d"].get(f"{T:g}", {}) if T is not None else {}
    names = stats["descriptors"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(names) + 2), 4.5), layout="constrained")
    parts = [(label, entry.get(label, {})) for label in ("D_avg", "D_max")]
    if T is None or all("pearson" not in e for _, e in parts):
        n = entry.get("n_valid", 0)
        _skipped(ax, f"n valid = {n}" + (f" at {T:g} K" if T is not None else "") +
                 ": skipped\n(no diffusion coefficient: runs flagged too_short or melted, "
                 "or D not resolved / the ion does not diffuse)")
        ax.set_title("Correlation of descriptors with D")
        _save(fig, base)
        return
    x = np.arange(len(names))
    width = 0.4
    for shift, (label, e) in zip((-width / 2, width / 2), parts, strict=True):
        if "pearson" not in e:
            continue
        rows = [e["pearson"][n] for n in names]
        r = np.array([np.nan if v["r"] is None else v["r"] for v in rows])
        lo = np.array([np.nan if v["ci95_low"] is None else v["ci95_low"] for v in rows])
        hi = np.array([np.nan if v["ci95_high"] is None else v["ci95_high"] for v in rows])
        err = np.vstack([np.clip(r - lo, 0, None), np.clip(hi - r, 0, None)])
        ax.bar(x + shift, r, width, yerr=np.nan_to_num(err), capsize=2,
               label=f"log10 {label} (n = {rows[0]['n']})")
    ax.axhline(0, color="0.4", lw=0.6)
    ax.set_xticks(x, [_short(n) for n in names], rotation=90, fontsize=7)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("Pearson r with log10 D (95 % bootstrap CI)")
    ax.set_title(f"Correlation of descriptors with D at {T:g} K")
    ax.legend(fontsize=8)
    _save(fig, base)


def d_versus(table, T: float | None, xcol: str, xlabel: str, title: str, base: Path,
             color_col: str | None = None, cmap: str = "viridis") -> None:
    """log10 D_avg and log10 D_max against a descriptor at temperature T (seed 000 Figs. 2,
    3, S11), 95 % intervals as error bars, one marker per D source, flagged runs hollow."""
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.4), layout="constrained")
    sub = table[(table["temperature_K"] == T) & table["use_in_fits"]] if T is not None \
        else table.iloc[0:0]
    if xcol in sub:
        sub = sub[np.isfinite(sub[xcol].astype(float))]
    n_valid = int(sub["d_valid"].sum()) if len(sub) else 0
    at_T = table[table["temperature_K"] == T] if T is not None else table.iloc[0:0]
    n_flag = int(at_T["flagged"].sum())
    n_nd = int(at_T["diffusive"].eq(False).sum()) if "diffusive" in at_T else 0
    for ax, name in zip(axes, ("d_avg", "d_max"), strict=True):
        ax.set_title(f"{'D_avg' if name == 'd_avg' else 'D_max'}"
                     + (f" at {T:g} K" if T is not None else ""))
        if not len(sub):
            _skipped(ax, f"n valid = {n_valid}: skipped\n({n_flag} run(s) flagged too_short "
                         f"or melted, {n_nd} with D not resolved: no diffusion "
                         "coefficient)")
            continue
        d = sub[f"{name}_cm2_s"].to_numpy(float)
        lo = sub[f"{name}_ci95_low_cm2_s"].to_numpy(float)
        hi = sub[f"{name}_ci95_high_cm2_s"].to_numpy(float)
        x = sub[xcol].to_numpy(float)
        ok = d > 0
        err = np.vstack([np.nan_to_num(np.clip(d - lo, 0, None)),
                         np.nan_to_num(np.clip(hi - d, 0, None))])
        err[0] = np.minimum(err[0], 0.999 * d)  # a log axis cannot reach zero
        c = sub[color_col].to_numpy(float) if color_col else None
        sc = None
        sources = sorted(set(sub["d_source"]), key=lambda x: (x != "md", x))  # MD first
        for k, src in enumerate(sources):
            mk = SOURCE_MARKERS[k % len(SOURCE_MARKERS)]
            for flagged in (False, True):
                sel = ok & (sub["d_source"].to_numpy() == src) & \
                    (sub["flagged"].to_numpy() == flagged)
                if not sel.any():
                    continue
                ax.errorbar(x[sel], d[sel], yerr=err[:, sel], fmt="none", ecolor="0.6",
                            elinewidth=0.8, capsize=2)
                label = f"{src}" + (" (flagged: not a D)" if flagged else "")
                if flagged:
                    ax.scatter(x[sel], d[sel], marker=mk, facecolors="none", edgecolors="0.5",
                               label=label, zorder=3)
                elif c is not None:
                    sc = ax.scatter(x[sel], d[sel], marker=mk, c=c[sel], cmap=cmap,
                                    label=label, zorder=3, edgecolors="k", linewidths=0.4)
                else:
                    ax.scatter(x[sel], d[sel], marker=mk, label=label, zorder=3)
        for xi, di, mid in zip(x[ok], d[ok], sub["id"].to_numpy()[ok], strict=True):
            ax.annotate(mid, (xi, di), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(r"D (cm$^2$/s)")
        ax.legend(fontsize=7)
        if sc is not None:
            fig.colorbar(sc, ax=ax, label=_short(color_col).replace("_", " "))
    fig.suptitle(title + f" (n valid = {n_valid})")
    _save(fig, base)


def pca_biplot(clu: dict, per: list[dict], base: Path, cmap: str = "tab10") -> None:
    """PC1–PC2 and PC1–PC3 scores coloured by k-means cluster, loadings as arrows."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
    if "skipped" in clu:
        for ax in axes:
            _skipped(ax, f"PCA skipped: {clu['skipped']}")
        _save(fig, base)
        return
    ev = clu["explained_variance_ratio"]
    for ax, pc in zip(axes, ("PC2", "PC3"), strict=True):
        if pc not in per[0] or pc not in clu["loadings"]:
            _skipped(ax, f"{pc}: fewer than 3 components")
            continue
        x = np.array([r["PC1"] for r in per])
        y = np.array([r[pc] for r in per])
        ax.scatter(x, y, c=[r["cluster"] for r in per], cmap=cmap, vmin=0, vmax=9,
                   edgecolors="k", linewidths=0.4, zorder=3)
        for r in per:
            ax.annotate(r["id"], (r["PC1"], r[pc]), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
        scale = 0.9 * max(np.abs(x).max(), np.abs(y).max(), 1e-9)
        l1, l2 = clu["loadings"]["PC1"], clu["loadings"][pc]
        longest = sorted(l1, key=lambda n: -(l1[n] ** 2 + l2[n] ** 2))[:8]
        for name in longest:  # the 8 longest loadings in this plane
            ax.arrow(0, 0, scale * l1[name], scale * l2[name], color="tab:red", alpha=0.6,
                     width=0.002 * scale, length_includes_head=True)
            ax.text(scale * l1[name] * 1.05, scale * l2[name] * 1.05, _short(name), fontsize=6,
                    color="tab:red")
        i = int(pc[-1]) - 1
        ax.set_xlabel(f"PC1 ({100 * ev[0]:.0f} % of variance)")
        ax.set_ylabel(f"{pc} ({100 * ev[i]:.0f} % of variance)")
        ax.axhline(0, color="0.8", lw=0.5)
        ax.axvline(0, color="0.8", lw=0.5)
    fig.suptitle(f"PCA of {len(clu['descriptors'])} standardised descriptors (8 longest "
                 "loadings drawn), "
                 f"{clu['n_materials']} materials; colour: k-means cluster (k = {clu['best_k']})")
    _save(fig, base)


def kmeans_selection(clu: dict, base: Path) -> None:
    """Elbow (inertia) and mean silhouette against k."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), layout="constrained")
    if "skipped" in clu or not clu.get("k"):
        for ax in axes:
            _skipped(ax, "k-means skipped: " + clu.get("skipped", "no k below the number of "
                                                                   "materials"))
        _save(fig, base)
        return
    axes[0].plot(clu["k"], clu["inertia"], "o-")
    axes[0].set_ylabel("Inertia (standardised units²)")
    axes[0].set_title("Elbow")
    axes[1].plot(clu["k"], clu["silhouette"], "o-")
    axes[1].axvline(clu["best_k"], color="tab:red", ls="--", label=f"chosen k = {clu['best_k']}")
    axes[1].set_ylabel("Mean silhouette")
    axes[1].set_title("Silhouette")
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel("Number of clusters k")
        ax.set_xticks(clu["k"])
    _save(fig, base)


def model_parity(model: dict, parity: list[dict], base: Path) -> None:
    """CV parity plot of log10 D per feature set, or the model's skip reason."""
    sets = model.get("feature_sets", {})
    names = [n for n in ("phonon", "structure_elastic", "all", "anharmonic", "all_anharmonic")
             if n in sets]
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(4.2 * max(1, len(names)), 4),
                             squeeze=False, layout="constrained")
    if "skipped" in model or not names:
        _skipped(axes[0][0], "Model skipped: " + model.get("skipped", "no feature set"))
        _save(fig, base)
        return
    for ax, name in zip(axes[0], names, strict=True):
        rows = [r for r in parity if r["feature_set"] == name]
        if "skipped" in sets[name] or not rows:
            _skipped(ax, f"{name}: {sets[name].get('skipped', 'no rows')}")
            continue
        t = np.array([r["log10_d_true"] for r in rows])
        p = np.array([r["log10_d_cv"] for r in rows])
        lim = [min(t.min(), p.min()) - 0.2, max(t.max(), p.max()) + 0.2]
        ax.plot(lim, lim, color="0.5", lw=0.8)
        ax.scatter(t, p, edgecolors="k", linewidths=0.4)
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        ax.set_xlabel(r"log$_{10}$ D, MD or external (cm$^2$/s)")
        ax.set_ylabel(r"log$_{10}$ D, CV prediction (cm$^2$/s)")
        ax.set_title(f"{name}: R² = {sets[name]['cv_r2']:.2f}, "
                     f"MAE = {sets[name]['cv_mae_log10']:.2f}", fontsize=9)
    fig.suptitle(f"Random forest, grouped CV at {model['temperature_K']:g} K")
    _save(fig, base)


def msd_column(table, T: float | None) -> str | None:
    """The phonon MSD column of the mobile ion at T (else at the highest phonon T)."""
    cols = [c for c in table.columns if c.startswith("ph_msd_mobile_mean_")
            and c.endswith("K_A2")]
    if not cols:
        return None
    by_T = {float(c[len("ph_msd_mobile_mean_"):-len("K_A2")]): c for c in cols}
    return by_T.get(T) if T is not None and T in by_T else by_T[max(by_T)]


def rotation_figure(table, model: dict, T: float | None, base: Path) -> bool:
    """Seed 001 Fig. 2: (a) each material's smallest polyanion C(t) at half the run against
    its mobile-ion TMSD, coloured by category, with the two thresholds; (b) SHAP values of
    the rotation classifier, eight strongest features, coloured by the feature's value (or
    the classifier's skip reason). False (no figure) without categorised runs."""
    if "rotation_diffusion_category" not in table or T is None:
        return False
    rows = table[(table["temperature_K"] == T) & table["rotation_diffusion_category"].notna()]
    if rows.empty:
        return False
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for cat, colour, label in ((1, "tab:red", "1: rotation + diffusion"),
                               (2, "tab:blue", "2: rotation only"), (3, "tab:green", "3: none")):
        sel = rows["rotation_diffusion_category"].astype(int) == cat
        ax.scatter(rows["mobile_tmsd_A2"][sel], rows["polyanion_C_half_run_min"][sel],
                   c=colour, label=label, s=25)
    rot = model.get("rotation_classifier", {})
    # the thresholds the runs were categorised with (dynamics.rotation_threshold,
    # dynamics.diffusion_tmsd_A2; the defaults for results that do not record them)
    c_max = float(rows.get("rotation_threshold_C", pd.Series([0.9])).fillna(0.9).iloc[0])
    d_min = float(rows.get("diffusion_threshold_tmsd_A2", pd.Series([5.0])).fillna(5.0)
                  .iloc[0])
    ax.axhline(c_max, color="tab:red", ls=":", lw=1, label=f"C = {c_max:g}")
    ax.axvline(d_min, color="tab:blue", ls=":", lw=1, label=f"TMSD = {d_min:g} Å²")
    ax.set(xscale="symlog", xlabel="mobile-ion TMSD at half the run (Å²)",
           ylabel="polyanion C(t) at half the run", title=f"(a) categories at {T:g} K")
    ax.legend(fontsize=7)
    if "skipped" in rot or not rot.get("shap"):
        _skipped(bx, "Rotation classifier skipped: " + rot.get("skipped", "no SHAP values"))
    else:
        shap = rot["shap"]
        top = list(rot["mean_abs_shap"])[:8][::-1]
        for k, feat in enumerate(top):
            pts = [r for r in shap if r["feature"] == feat]
            y = k + np.linspace(-0.2, 0.2, len(pts))
            sc = bx.scatter([r["shap_log_odds"] for r in pts], y, s=12, cmap="coolwarm",
                            c=[r["value_standardised"] for r in pts], vmin=-2, vmax=2)
        fig.colorbar(sc, ax=bx, label="feature value (standardised)")
        bx.set_yticks(range(len(top)), [_short(f) for f in top], fontsize=7)
        bx.axvline(0, color="k", lw=0.5)
        bx.set(xlabel="SHAP value (log-odds of rotation)",
               title=f"(b) logistic regression, CV F1 {rot['cv_f1']:.2f}")
    _save(fig, base)
    return True


def campaign_figures(table, stats: dict, clu: dict, per: list[dict], model: dict,
                     parity: list[dict], T: float | None, cmap: str, folder: Path) -> list[str]:
    """Every campaign figure into ``folder``; returns their names."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gram = stats["correlogram"]
    # at a glance: one descriptor per quantity (families.py), the full matrix beside it
    keep = representatives(gram["names"])
    for method in ("pearson", "spearman"):
        div = cmap if cmap != "viridis" else "RdBu_r"
        if len(keep) < len(gram["names"]):
            correlogram(subset(gram, keep), method, div, folder / f"correlogram_{method}",
                        f"\n{len(keep)} of {len(gram['names'])} descriptors, one per quantity")
            correlogram(gram, method, div, folder / f"correlogram_{method}_all")
        else:
            correlogram(gram, method, div, folder / f"correlogram_{method}")
    correlations_with_d(stats, T, folder / "correlations_with_d")
    msd = msd_column(table, T)
    if msd:
        d_versus(table, T, msd, f"Phonon MSD of the mobile ion, {msd.split('_')[-2]} (Å²)",
                 "Seed 000 Fig. 2: D vs harmonic mobile-ion MSD", folder / "fig2_d_vs_msd")
    d_versus(table, T, "vdos_centre_mobile_THz", "Mobile-ion VDOS centre from MD (THz)",
             "Seed 000 Fig. 3: D vs mobile-ion VDOS centre", folder / "fig3_d_vs_vdos_centre",
             color_col="vdos_centre_over_acoustic_cutoff", cmap=cmap)
    if "ph_acoustic_cutoff_THz" in table:
        d_versus(table, T, "ph_acoustic_cutoff_THz", "Acoustic cutoff (THz)",
                 "Seed 000 Fig. S11: D vs acoustic cutoff", folder / "figS11_d_vs_acoustic_cutoff")
    pca_biplot(clu, per, folder / "pca_biplot")
    kmeans_selection(clu, folder / "kmeans_selection")
    model_parity(model, parity, folder / "model_parity")
    rotation_figure(table, model, T, folder / "fig2_seed001_rotation")
    return sorted(p.name for p in folder.glob("*.png"))
