"""Stability: the dynamic-stability screen (seed 000 §2.3; DESIGN step 6).

A material is dynamically stable when no mode on a Γ-centred q-mesh *or* on the
seekpath band path lies below ``-tolerance_THz``, apart from the three acoustic
modes at Γ (whose small negative values come from sum-rule residue).
"""

from __future__ import annotations

import numpy as np

from .harmonic import acoustic_cutoff, band_path, gamma_acoustic_mask, mesh_modes, mesh_numbers
from .settings import StabilitySettings


def assess_stability(ph, s: StabilitySettings = StabilitySettings()) -> tuple[dict, dict]:
    """Verdict and evidence: lowest frequencies, imaginary-mode counts, where they are,
    and the acoustic cutoff of the band path; plus the band-path arrays for the figure.

    The mesh is Γ-centred with ``s.mesh_length_A`` (Å, phonopy's length rule).
    Frequencies are THz; phonopy reports imaginary frequencies as negative numbers.
    """
    mesh, tolerance_THz, npoints = s.mesh_length_A, s.tolerance_THz, s.band_points
    out: dict = {"tolerance_THz": tolerance_THz}
    path = band_path(ph, npoints)
    worst = (np.inf, None, None)
    n_imag = 0
    for name, modes in (("mesh", mesh_modes(ph, mesh, gamma_center=True)),
                        ("band_path", path.modes)):
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
    out["acoustic_cutoff_THz"] = acoustic_cutoff(path.modes)
    out["stable"] = bool(n_imag == 0)
    out["n_imaginary_modes"] = n_imag
    out["lowest_frequency_THz"] = worst[0]
    out["reason"] = "" if out["stable"] else (
        f"dynamically unstable: {n_imag} modes below -{tolerance_THz} THz, lowest "
        f"{worst[0]:.2f} THz at q = {np.round(worst[2], 3).tolist()} ({worst[1]})")
    arrays = path.arrays()
    return out, arrays
