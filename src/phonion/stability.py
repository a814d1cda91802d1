"""Stability: the dynamic-stability screen (seed 000 §2.3; DESIGN step 6).

A material is dynamically stable when no mode on a Γ-centred q-mesh *or* on the
seekpath band path lies below ``-tolerance_THz``, apart from the three acoustic
modes at Γ (whose small negative values come from sum-rule residue).
"""

from __future__ import annotations

import numpy as np

from .phonons import band_path, gamma_acoustic_mask, mesh_modes, mesh_numbers


def assess_stability(ph, mesh=30.0, tolerance_THz: float = 0.1, npoints: int = 51) -> dict:
    """Verdict and evidence: lowest frequencies, imaginary-mode counts, where they are.

    ``mesh``: integers or a length in Å (phonopy). Frequencies are THz; phonopy
    reports imaginary frequencies as negative numbers.
    """
    out: dict = {"tolerance_THz": tolerance_THz}
    worst = (np.inf, None, None)
    n_imag = 0
    for name, modes in (("mesh", mesh_modes(ph, mesh, gamma_center=True)),
                        ("band_path", band_path(ph, npoints).modes)):
        f = modes.frequencies_THz
        mask = ~gamma_acoustic_mask(modes)
        imag = (f < -tolerance_THz) & mask
        n = int(imag.sum())
        fmin = float(f[mask].min())
        iq, ib = np.unravel_index(np.argmin(np.where(mask, f, np.inf)), f.shape)
        out[f"{name}_lowest_frequency_THz"] = fmin
        out[f"{name}_n_imaginary_modes"] = n
        out[f"{name}_lowest_qpoint"] = modes.qpoints[iq].tolist()
        gamma = np.all(np.abs(modes.qpoints - np.rint(modes.qpoints)) < 1e-8, axis=1)
        if gamma.any():
            out[f"{name}_gamma_acoustic_THz"] = np.sort(
                f[np.flatnonzero(gamma)[0]][np.argsort(np.abs(f[np.flatnonzero(gamma)[0]]))[:3]]
            ).tolist()
        n_imag += n
        if fmin < worst[0]:
            worst = (fmin, name, modes.qpoints[iq].tolist())
        if name == "mesh":
            out["mesh"] = mesh_numbers(ph, mesh)
    out["stable"] = bool(n_imag == 0)
    out["n_imaginary_modes"] = n_imag
    out["lowest_frequency_THz"] = worst[0]
    out["reason"] = "" if out["stable"] else (
        f"dynamically unstable: {n_imag} modes below -{tolerance_THz} THz, lowest "
        f"{worst[0]:.2f} THz at q = {np.round(worst[2], 3).tolist()} ({worst[1]})")
    return out
