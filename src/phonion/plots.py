"""Figures of the phonon stage (PNG + SVG), after seed 000 Figs. 4 and 5.

Functions take the arrays written by :func:`phonion.descriptors.phonon_descriptors`
and write ``<base>.png`` and ``<base>.svg`` atomically.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from .io import atomic_path  # noqa: E402


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


def _coloured_bands(ax, arrays: dict, values: np.ndarray, cmap: str, norm) -> object:
    f = arrays["path/frequencies_THz"]
    lc_last = None
    for x, sl in _segments(arrays):
        for b in range(f.shape[1]):
            pts = np.column_stack([x, f[sl, b]])
            segs = np.stack([pts[:-1], pts[1:]], axis=1)
            val = 0.5 * (values[sl, b][:-1] + values[sl, b][1:])
            lc = LineCollection(segs, cmap=cmap, norm=norm, linewidths=2.0)
            lc.set_array(val)
            ax.add_collection(lc)
            lc_last = lc
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
    return lc_last


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
