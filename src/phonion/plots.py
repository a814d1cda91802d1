"""Per-material figures (PNG + SVG): phonon bands of the stability screen, seed 000
Figs. 4 and 5 analogues of the phonon descriptors, MSD(t), VDOS, Arrhenius and the
optional dynamics analyses.

Functions take a stage's arrays and scalars and write ``<base>.png`` and ``<base>.svg``
atomically.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from scipy.constants import e as _E_C  # noqa: E402
from scipy.constants import k as _KB_J_K  # noqa: E402

from .formats import atomic_path  # noqa: E402

KB_EV_K = _KB_J_K / _E_C  # Boltzmann constant, eV/K (as phonion.arrhenius; not imported from
# there, which would bring pymatgen into the MLP environments that draw the band figure)


def _save(fig, base: str | Path) -> None:
    for ext in ("png", "svg"):
        with atomic_path(f"{base}.{ext}") as tmp:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight")
    plt.close(fig)


def _segments(arrays: dict):
    """(x, f, value-index slices) of each connected band-path segment."""
    x = arrays["path/distances"]
    lengths = arrays["path/segment_lengths"]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return [(x[s:s + n], slice(s, s + n)) for s, n in zip(starts, lengths, strict=True)]


def _band_axes(ax, arrays: dict) -> None:
    """High-symmetry labels, zero line, limits and label of a band-structure axis."""
    f = arrays["path/frequencies_THz"]
    labels = [s.decode() if isinstance(s, bytes) else str(s) for s in arrays["path/labels"]]
    labels = [r"$\Gamma$" if s in ("GAMMA", "G", "Γ") else s.replace("GAMMA", r"$\Gamma$")
              for s in labels]
    pos = arrays["path/label_positions"]
    ax.set_xticks(pos, labels)
    for p in pos:
        ax.axvline(p, color="0.7", lw=0.6)
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xlim(arrays["path/distances"][0], arrays["path/distances"][-1])
    ax.set_ylim(min(0.0, f.min() * 1.05), f.max() * 1.05)
    ax.set_ylabel("Frequency (THz)")


def _coloured_bands(ax, arrays: dict, values: np.ndarray, cmap: str, norm) -> object:
    """Every band of every path segment coloured by ``values``, as one LineCollection
    (one per band and segment costs a draw call each: seconds on cells with many bands)."""
    f = arrays["path/frequencies_THz"]
    segs, vals = [], []
    for x, sl in _segments(arrays):
        for b in range(f.shape[1]):
            pts = np.column_stack([x, f[sl, b]])
            segs.append(np.stack([pts[:-1], pts[1:]], axis=1))
            vals.append(0.5 * (values[sl, b][:-1] + values[sl, b][1:]))
    lc = LineCollection(np.concatenate(segs), cmap=cmap, norm=norm, linewidths=2.0)
    lc.set_array(np.concatenate(vals))
    ax.add_collection(lc)
    _band_axes(ax, arrays)
    return lc


def plot_bands(arrays: dict, result: dict, title: str, base: str | Path) -> None:
    """Phonon bands along the seekpath path; the parts below −tolerance (imaginary modes,
    drawn negative) in red, with the tolerance band and the acoustic cutoff marked."""
    f = arrays["path/frequencies_THz"]
    tol = result["tolerance_THz"]
    fig, ax = plt.subplots(figsize=(7, 4.4))
    for x, sl in _segments(arrays):
        for b in range(f.shape[1]):
            y = f[sl, b]
            ax.plot(x, y, color="tab:blue", lw=1.0)
            if (y < -tol).any():
                ax.plot(x, np.where(y < -tol, y, np.nan), color="tab:red", lw=1.6)
    _band_axes(ax, arrays)
    ax.axhspan(-tol, tol, color="0.85", zorder=0, label=f"±{tol:g} THz tolerance")
    ax.axhline(result["acoustic_cutoff_THz"], color="k", ls="--", lw=0.8,
               label=f"acoustic cutoff {result['acoustic_cutoff_THz']:.2f} THz")
    if not result["stable"]:
        ax.plot([], [], color="tab:red", lw=1.6, label="below −tolerance (imaginary)")
    verdict = "dynamically stable" if result["stable"] else (
        f"dynamically unstable: lowest {result['lowest_frequency_THz']:.2f} THz")
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3,
              frameon=False)
    ax.set_title(f"{title} — {verdict}", fontsize=10, pad=22)
    _save(fig, base)


def plot_msd_modes(arrays: dict, temperature_K: float, title: str, base: str | Path) -> None:
    """Band structure coloured by mode-resolved mobile-ion MSD, and participation ratio
    vs frequency on the mesh (seed 000 Fig. 4)."""
    key = f"msd_mobile_per_mode_A2_{temperature_K:g}K"
    # per q-point (not divided by the number of q-points): diverges at Γ, hence a log scale
    path_msd = np.clip(arrays[f"path/{key}"], 1e-12, None)
    mesh_msd = np.clip(arrays[f"mesh/{key}"] / arrays["mesh/weights"][:, None], 1e-12, None)
    positive = path_msd[path_msd > 1e-12]
    lo, hi = (np.percentile(positive, [2, 99]) if positive.size else (1e-6, 1.0))
    norm = matplotlib.colors.LogNorm(max(lo, 1e-8), max(hi, lo * 10))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    lc = _coloured_bands(ax1, arrays, path_msd, "viridis", norm)
    fig.colorbar(lc, ax=ax1, label=f"mobile-ion MSD of the mode at {temperature_K:g} K (Å²)",
                 extend="both")
    f = arrays["mesh/frequencies_THz"].ravel()
    sc = ax2.scatter(f, arrays["mesh/participation_ratio"].ravel(), c=mesh_msd.ravel(), s=3,
                     cmap="viridis", norm=norm, rasterized=True)
    del sc
    ax2.set_xlabel("Frequency (THz)")
    ax2.set_ylabel("Participation ratio")
    ax2.set_ylim(0, 1.02)
    fig.suptitle(title)
    _save(fig, base)


def plot_coupling_pdos(arrays: dict, scalars: dict, title: str, base: str | Path,
                       smearing_THz: float = 0.1) -> None:
    """Band structure coloured by the mobile–host coupling factor, and partial DOS with
    the acoustic cutoff and the mobile-ion PDOS centre marked (seed 000 Fig. 5)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True,
                                   gridspec_kw={"width_ratios": [2, 1]})
    c = np.nan_to_num(arrays["path/coupling_factor"], nan=0.0)
    lc = _coloured_bands(ax1, arrays, c, "coolwarm", matplotlib.colors.Normalize(-1, 1))
    fig.colorbar(lc, ax=ax1, label="mobile–host coupling factor")
    f = arrays["mesh/frequencies_THz"].ravel()
    w = np.repeat(arrays["mesh/weights"], arrays["mesh/frequencies_THz"].shape[1])
    mob = arrays["mesh/mobile_weight"].ravel() * w
    grid = np.linspace(min(0.0, f.min()), f.max() * 1.05, 400)
    kern = np.exp(-0.5 * ((grid[:, None] - f[None, :]) / smearing_THz) ** 2)
    kern /= smearing_THz * np.sqrt(2 * np.pi)
    dos_mob, dos_all = kern @ mob, kern @ w
    ion = scalars.get("mobile_ion", "mobile")
    ax2.plot(dos_mob, grid, color="tab:red", label=f"{ion}")
    ax2.plot(dos_all - dos_mob, grid, color="tab:blue", label=f"non-{ion}")
    ax2.axhline(scalars["acoustic_cutoff_THz"], color="k", ls="--", lw=1,
                label=f"acoustic cutoff {scalars['acoustic_cutoff_THz']:.2f} THz")
    ax2.axhline(scalars["pdos_mobile_centre_THz"], color="m", ls="--", lw=1,
                label=f"{ion} PDOS centre {scalars['pdos_mobile_centre_THz']:.2f} THz")
    ax2.set_xlabel("PDOS (states/THz/cell)")
    ax2.legend(fontsize=7, loc="upper right")
    fig.suptitle(title)
    _save(fig, base)


def plot_msd(arrays: dict, result: dict, title: str, base: str | Path) -> None:
    """MSD(t) of every species (sum over directions) with the fit in its window (or the
    upper bound when there is no diffusive regime), and a log-log inset with slope 1."""
    t = arrays["time_ps"]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    species = sorted(k.split("/")[1][:-3] for k in arrays if k.startswith("msd/"))
    for name in species:
        ax.plot(t, arrays[f"msd/{name}_A2"].sum(axis=1), label=name)
    ion = result["mobile_ion"]
    if result.get("diffusive"):
        d, (lo, hi) = result["d_avg_A2_ps"], result["d_avg_fit_window_ps"]
        c = result.get("d_avg_intercept_A2") or 0.0
        ax.plot(t, c + 6 * d * t, "k--", lw=0.7, alpha=0.6)  # the fitted line, extended
        tt = np.linspace(lo, hi, 50)
        ax.plot(tt, c + 6 * d * tt, "k-", lw=2, alpha=0.6,
                label=f"{ion} fit {lo:.3g}–{hi:.3g} ps: D = {d:.2e} ± "
                      f"{result['d_avg_stderr_A2_ps']:.1e} Å²/ps")
    else:
        ub = result["d_avg_upper_bound_A2_ps"]
        tt = np.linspace(0, t[len(t) // 2], 50)
        ax.plot(tt, 6 * ub * tt, "k:", lw=1,
                label=(f"{ion} does not diffuse" if result.get("diffusion_class")
                       == "not_diffusing" else f"{ion}: D not resolved in this run")
                + f": D < {ub:.1e} Å²/ps (6Dt)")
    ax.set_xlabel("Time lag (ps)")
    ax.set_ylabel("MSD (Å²)")
    ax.legend(fontsize=7, loc="upper left")
    inset = ax.inset_axes([0.64, 0.12, 0.32, 0.32])
    for name in species:
        m = arrays[f"msd/{name}_A2"].sum(axis=1)
        inset.loglog(t[1:], np.clip(m[1:], 1e-6, None))
    m = arrays[f"msd/{ion}_A2"].sum(axis=1)
    inset.loglog(t[1:], m[-1] * t[1:] / t[-1], "k:", lw=0.8)  # slope 1 (diffusive)
    inset.set_xlabel("log lag", fontsize=6)
    inset.tick_params(labelsize=6)
    ax.set_title(title, fontsize=10)
    _save(fig, base)


def plot_vdos(arrays: dict, result: dict, acoustic_cutoff_THz: float | None, title: str,
              base: str | Path) -> None:
    """VDOS per species with the acoustic cutoff and the mobile-ion VDOS centre marked."""
    f = arrays["vdos/frequency_THz"]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for key in sorted(k for k in arrays if k.startswith("vdos/") and k != "vdos/frequency_THz"):
        ax.plot(f, arrays[key], label=key.split("/")[1])
    ion = result["mobile_ion"]
    if result.get("velocities_from_positions"):
        title += " (velocities from positions)"
    ax.axvline(result["vdos_centre_mobile_THz"], color="m", ls="--", lw=1,
               label=f"{ion} VDOS centre {result['vdos_centre_mobile_THz']:.2f} THz")
    if acoustic_cutoff_THz:
        ax.axvline(acoustic_cutoff_THz, color="k", ls="--", lw=1,
                   label=f"acoustic cutoff {acoustic_cutoff_THz:.2f} THz")
    ax.set_xlim(0, min(f.max(), 3 * max(result["vdos_centre_mobile_THz"], 1.0)))
    ax.set_xlabel("Frequency (THz)")
    ax.set_ylabel("VDOS (1/THz)")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    _save(fig, base)


def plot_arrhenius(result: dict, title: str, base: str | Path) -> None:
    """D against 1000/T (log scale) with error bars and the fitted line, from the result
    of :func:`phonion.arrhenius.arrhenius_stage`."""
    T = np.asarray(result["temperatures_K"], float)
    D = np.asarray(result["d_avg_A2_ps"], float)
    fit = result if "ea_eV" in result else None
    fig, ax = plt.subplots(figsize=(5, 4))
    if len(T):
        ax.errorbar(1000 / T, D, yerr=result["d_avg_stderr_A2_ps"], fmt="o")
    else:
        ax.text(0.5, 0.5, "no usable D", ha="center", va="center", transform=ax.transAxes)
    if fit:
        x = np.linspace(1000 / T.max() * 0.95, 1000 / T.min() * 1.05, 50)
        ax.plot(x, fit["d0_A2_ps"] * np.exp(-fit["ea_eV"] * x / 1000 / KB_EV_K), "k--",
                label=f"Ea = {fit['ea_eV']:.3f} ± {fit['ea_stderr_eV']:.3f} eV")
        ax.legend(fontsize=8)
    if len(T) and (D > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel("1000/T (1/K)")
    ax.set_ylabel("D (Å²/ps)")
    ax.set_title(title, fontsize=10)
    _save(fig, base)


def plot_band_overlay(arrays: dict, result: dict, labels: tuple[str, str], title: str,
                      base: str | Path) -> None:
    """MLP (blue) and DFT (black, dashed) phonon bands on the same path, both from the
    same least-squares fit of forces on the same snapshots (seed 000 Fig. S8), with the
    band RMSE and, when both are stable, the mobile-ion MSD ratio in the title."""
    mlp = {k[4:]: v for k, v in arrays.items() if k.startswith("mlp/")}
    dft = {k[4:]: v for k, v in arrays.items() if k.startswith("dft/")}
    fig, ax = plt.subplots(figsize=(7, 4.4))
    for data, colour, style, lw in ((dft, "k", "--", 1.2), (mlp, "tab:blue", "-", 1.0)):
        f = data["path/frequencies_THz"]
        for x, sl in _segments(data):
            for b in range(f.shape[1]):
                ax.plot(x, f[sl, b], color=colour, ls=style, lw=lw)
    both = {**dft, "path/frequencies_THz": np.concatenate(
        [dft["path/frequencies_THz"], mlp["path/frequencies_THz"]])}
    _band_axes(ax, both)
    ax.plot([], [], color="tab:blue", lw=1.0, label=labels[0])
    ax.plot([], [], color="k", ls="--", lw=1.2, label=labels[1])
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2,
              frameon=False)
    note = f"band RMSE {result['band_rmse_THz']:.2f} THz"
    hot = result["by_temperature_K"]
    if hot:
        t = max(hot, key=float)
        note += f", MSD ratio {hot[t]['msd_ratio_mlp_dft']:.2f} at {t} K"
    ax.set_title(f"{title}\n{note}", fontsize=10, pad=22)
    _save(fig, base)


def plot_mlp_benchmark(summary, base: str | Path) -> None:
    """Bar chart of the MLP benchmark (seed 000 §2.2): per model, mean force RMSE against
    DFT, mean |mobile-ion MSD error| and the stability agreement rate."""
    panels = [("force_rmse_meV_A", "force RMSE vs DFT (meV/Å)"),
              ("msd_abs_error_percent", "|mobile-ion MSD error| vs DFT (%)"),
              ("stability_agreement", "stability verdict = DFT (share)")]
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    names = list(summary["mlp"])
    x = np.arange(len(names))
    for ax, (key, label) in zip(axes, panels, strict=True):
        values = summary[key].astype(float).to_numpy()
        ax.bar(x, np.nan_to_num(values), color="tab:blue")
        for xi, v in zip(x, values, strict=True):
            ax.text(xi, np.nan_to_num(v), "n/a" if np.isnan(v) else f"{v:.3g}",
                    ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=7)
        ax.set_title(label, fontsize=9)
        if key == "stability_agreement":
            ax.set_ylim(0, 1.1)
    n = int(summary["n_materials"].max()) if len(summary) else 0
    fig.suptitle(f"MLPs against DFT forces on the same displaced supercells "
                 f"({n} material{'s' if n != 1 else ''})", fontsize=10)
    fig.tight_layout()
    _save(fig, base)


def plot_msd_overlay(arrays: dict, result: dict, labels: tuple[str, str], title: str,
                     base: str | Path) -> None:
    """Mobile-ion MSD(t) of the MLP MD (blue) and of AIMD (black) at the same temperature
    (seed 000 Fig. S7), with both D and their ratio, or the MSD ratio at the common lag
    when a run's D is not resolved."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(arrays["mlp/time_ps"], arrays["mlp/msd_mobile_A2"], color="tab:blue",
            label=labels[0])
    ax.plot(arrays["aimd/time_ps"], arrays["aimd/msd_mobile_A2"], color="k", ls="--",
            label=labels[1])
    ax.axvline(result["common_lag_ps"], color="0.6", lw=0.8, ls=":",
               label=f"common lag {result['common_lag_ps']:.3g} ps")
    ax.set_xlabel("Lag time (ps)")
    ax.set_ylabel("Mobile-ion MSD (Å²)")
    ax.set_xlim(0, None)
    ax.set_ylim(0, None)
    ax.legend(fontsize=8, frameon=False)
    if result["d_ratio_mlp_aimd"]:
        lo, hi = result["d_ratio_interval"] or (np.nan, np.nan)
        note = (f"D MLP/AIMD = {result['d_ratio_mlp_aimd']:.2f} [{lo:.2f}, {hi:.2f}] "
                f"(MLP {result['d_mlp_A2_ps'] * 1e-4:.2e}, AIMD "
                f"{result['d_aimd_A2_ps'] * 1e-4:.2e} cm²/s)")
    else:
        which = [w for w in ("MLP", "AIMD") if not result[f"d_{w.lower()}_A2_ps"]]
        note = (f"no D ratio: {' and '.join(which)} not diffusive (reasons in the JSON); "
                f"MSD ratio MLP/AIMD {result['msd_ratio_mlp_aimd']:.2f} at the common lag")
    ax.set_title(f"{title}\n{note}", fontsize=9)
    _save(fig, base)


def plot_finetune(arrays: dict, result: dict, base: str | Path) -> None:
    """Fine-tuning check: held-out force components of the base and the fine-tuned model
    against DFT (parity, with each model's RMSE) and the held-out RMSE per epoch."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9.6, 4.2))
    dft = arrays["dft_eV_A"]
    lim = float(np.abs(dft).max()) * 1.1 or 1.0
    for model, colour, name in (("base", "0.55", "base"), ("finetuned", "tab:blue", "fine-tuned")):
        rmse = result[f"held_out_{model}"]["rmse_meV_A"]
        ax.scatter(dft, arrays[f"{model}_eV_A"], s=6, color=colour, alpha=0.6,
                   label=f"{name}: RMSE {rmse:.2g} meV/Å")
    ax.plot([-lim, lim], [-lim, lim], color="k", lw=0.8)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel="DFT force component (eV/Å)",
           ylabel="MLP force component (eV/Å)")
    ax.set_title(f"{result['n_held_out']} held-out snapshots (never trained on)", fontsize=9)
    ax.legend(fontsize=8)
    bx.plot(arrays["epoch"], arrays["held_out_rmse_meV_A"], "o-", color="tab:blue", ms=3)
    bx.axhline(result["held_out_base"]["rmse_meV_A"], color="0.55", ls="--", label="base model")
    bx.set(xlabel="Epoch", ylabel="Held-out force RMSE (meV/Å)", ylim=(0, None))
    bx.legend(fontsize=8)
    bx.set_title(f"{result['n_train']} training snapshots, "
                 f"{result['cpu_seconds']:.0f} s CPU", fontsize=9)
    fig.suptitle(f"Fine-tuning {result['base_model'].get('name', '')} on the campaign's "
                 f"DFT forces ({', '.join(result['materials'])})", fontsize=10)
    fig.tight_layout()
    _save(fig, base)
