"""Figures of the ``dynamics`` stage: one panel per structure/dynamics analysis and the
mobile-ion density projected along each lattice vector (split from :mod:`phonion.plots`,
whose Agg backend and file writing they share)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .plots import _save, plt


def plot_density(arrays: dict, result: dict, title: str, base: str | Path) -> None:
    """The mobile-ion density projected along each lattice vector (log scale), with the
    dimensionality and percolation barriers of :mod:`phonion.density` in the title."""
    from matplotlib.colors import LogNorm

    rho = arrays["density/P_A-3"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), layout="constrained")
    names = "abc"
    for axis, ax in enumerate(axes):
        proj = rho.mean(axis=axis)
        positive = proj[proj > 0]
        norm = LogNorm(vmin=max(positive.min(), positive.max() * 3e-3), vmax=positive.max()) \
            if positive.size else None
        im = ax.imshow(np.where(proj > 0, proj, np.nan).T, origin="lower", cmap="magma",
                       norm=norm, extent=(0, 1, 0, 1), aspect="auto")
        rest = [n for i, n in enumerate(names) if i != axis]
        ax.set(xlabel=f"{rest[0]} (fractional)", ylabel=f"{rest[1]} (fractional)",
               title=f"averaged along {names[axis]}")
    fig.colorbar(im, ax=axes, label=f"{result['mobile_ion']} density (Å⁻³)")
    barriers = ", ".join(
        f"{d}D {result[f'density_percolation_barrier_{d}d_eV']:.2f} eV" for d in (1, 2, 3)
        if result.get(f"density_percolation_barrier_{d}d_eV") is not None)
    dim = result["density_dimensionality"]
    fig.suptitle(f"{title}: " + (f"paths percolate in {dim}D" if dim else
                                 "no path through the cell in this run (0D)")
                 + (f" (barriers {barriers})" if barriers else ""), fontsize=10)
    _save(fig, base)


def plot_dynamics(arrays: dict, result: dict, title: str, base: str | Path) -> None:
    """One panel per analysis that ran: g(r), 4πr²G_s(r, Δt), C(t) and ρ(θ)."""
    panels = [a for a in ("rdf", "van_hove", "reorientation", "tetrahedra")
              if any(k.startswith(a + "/") for k in arrays)]  # density: plot_density
    if "van_hove/G_d_A-3" in arrays:
        panels.insert(panels.index("van_hove") + 1, "van_hove_distinct")
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(4.2 * max(len(panels), 1), 3.6),
                             squeeze=False)
    for ax, name in zip(axes[0][:len(panels)], panels, strict=True):
        keys = sorted(k for k in arrays if k.startswith(name + "/"))
        if name == "rdf":
            for k in keys:
                if k != "rdf/r_A":
                    ax.plot(arrays["rdf/r_A"], arrays[k], label=k.split("/")[1])
            ax.set(xlabel="r (Å)", ylabel="g(r)")
        elif name == "van_hove":
            r = arrays["van_hove/r_A"]
            dr = r[1] - r[0]
            for lag, g in zip(arrays["van_hove/lag_ps"], arrays["van_hove/G_s_A-3"],
                              strict=True):
                ax.plot(r, 4 * np.pi * r**2 * g * dr, label=f"{lag:.2g} ps")
            reached = r[(arrays["van_hove/G_s_A-3"] > 0).any(axis=0)]
            ax.set(xlabel="r (Å)", ylabel=f"4πr²G_s dr ({result['mobile_ion']})",
                   xlim=(0, min(r[-1], 1.2 * reached.max() + dr) if len(reached) else r[-1]))
        elif name == "van_hove_distinct":
            r = arrays["van_hove/r_distinct_A"]
            gd = arrays["van_hove/G_d_A-3"]
            rho = gd[:, len(r) // 2:].mean()  # the long-range level, (N − 1)/V
            for lag, g in zip(arrays["van_hove/lag_ps"], gd, strict=True):
                ax.plot(r, g / rho, label=f"{lag:.2g} ps")
            ax.axhline(1.0, color="k", ls=":", lw=1)
            ax.set(xlabel="r (Å)", ylabel=f"G_d / ρ ({result['mobile_ion']})")
        elif name == "reorientation":
            t = arrays["reorientation/time_ps"]
            for k in keys:
                if k != "reorientation/time_ps":
                    ax.plot(t, arrays[k], label=k.split("/")[1])
            ax.axhline(result.get("rotation_threshold", 0.9), color="k", ls=":", lw=1)
            ax.set(xlabel="t (ps)", ylabel="C(t)")
        else:
            th = arrays["tetrahedra/theta_deg"]
            for k in keys:
                if k.endswith("/rho_theta"):
                    ax.plot(th, arrays[k], label=k.split("/")[1])
            ax.axvline(60.0, color="k", ls=":", lw=1)
            ax.set(xlabel="θ (degrees)", ylabel="ρ(θ)", xlim=(30, 90))
        ax.legend(fontsize=7)
    if not panels:
        axes[0, 0].text(0.5, 0.5, "no g(r), van Hove, reorientation or angle analysis\n"
                        "(the density has its own figure)" if "density/P_A-3" in arrays
                        else "no analysis produced data", ha="center", va="center")
    fig.suptitle(title, fontsize=10)
    _save(fig, base)


def plot_structure_overlay(arrays: dict, result: dict, labels: tuple[str, str], title: str,
                           base: str | Path) -> None:
    """MLP MD against AIMD (seed 002 Figs. 3-4): g(r) of the mobile ion with each species,
    the mobile-ion VDOS, 4πr²G_s and G_d/ρ at the common lag; the numbers of
    :func:`phonion.aimd_validation.compare_structure` in the panel titles."""
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6), layout="constrained")
    r = arrays["structure/rdf/r_A"]
    for key in sorted(k for k in arrays if k.startswith("structure/rdf/mlp/")):
        pair = key.rsplit("/", 1)[1]
        line, = axes[0].plot(r, arrays[key], label=f"{pair} {labels[0]}")
        axes[0].plot(r, arrays[f"structure/rdf/aimd/{pair}"], ls="--", color=line.get_color(),
                     label=f"{pair} {labels[1]}")
    axes[0].set(xlabel="r (Å)", ylabel="g(r)")
    if "structure/vdos/mlp" in arrays:
        nu = arrays["structure/vdos/frequency_THz"]
        for who, label, ls in (("mlp", labels[0], "-"), ("aimd", labels[1], "--")):
            axes[1].plot(nu, arrays[f"structure/vdos/{who}"], ls=ls, label=label)
        axes[1].set(xlabel="frequency (THz)", ylabel="mobile-ion VDOS",
                    title=f"overlap {result.get('vdos_overlap_mobile', float('nan')):.2f}",
                    xlim=(0, min(nu[-1], 25)))
    rv = arrays["structure/van_hove/r_A"]
    for who, label, ls in (("mlp", labels[0], "-"), ("aimd", labels[1], "--")):
        axes[2].plot(rv, 4 * np.pi * rv**2 * arrays[f"structure/van_hove/{who}/G_s_A-3"],
                     ls=ls, label=label)
        axes[3].plot(rv, arrays[f"structure/van_hove/{who}/G_d_over_rho"], ls=ls, label=label)
    lag = result.get("van_hove_lag_ps", float("nan"))
    axes[2].set(xlabel="r (Å)", ylabel="4πr² G_s (Å⁻¹)",
                title=f"Δt = {lag:.3g} ps, overlap {result['van_hove_self_overlap']:.2f}")
    axes[3].axhline(1.0, color="k", ls=":", lw=1)
    axes[3].set(xlabel="r (Å)", ylabel="G_d / ρ", title="Δt = "
                f"{lag:.3g} ps, RMS difference {result['van_hove_distinct_rms_difference']:.2f}")
    for ax in axes:
        ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=10)
    _save(fig, base)
