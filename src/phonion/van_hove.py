"""The van Hove correlation function of the mobile ion (seed 002 eqs. 8 and 9): its self
part G_s(r, Δt), how far one ion has moved after Δt, and its distinct part G_d(r, Δt), where
the other ions were Δt earlier (split from :mod:`phonion.dynamics`, which calls them)."""

from __future__ import annotations

import numpy as np

from .errors import PhonionError
from .symmetry import inscribed_diameter_A


def _frames(n_frames: int, max_frames: int) -> np.ndarray:
    """Indices of at most ``max_frames`` evenly spaced frames."""
    return np.unique(np.linspace(0, n_frames - 1, min(n_frames, max_frames)).astype(int))


def _radial_grid(r_max_A: float, bin_A: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin edges, bin centres (Å) and shell volumes 4π/3 (r₊³ − r₋³) (Å³) up to ``r_max_A``."""
    edges = np.arange(0.0, r_max_A + bin_A / 2, bin_A)
    return edges, 0.5 * (edges[1:] + edges[:-1]), 4.0 / 3.0 * np.pi * np.diff(edges**3)


def van_hove_self(positions_A: np.ndarray, dt_ps: float, lags_ps: np.ndarray,
                  r_max_A: float = 8.0, bin_A: float = 0.05
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Seed 002 eq. 9: G_s(r, Δt) of the given atoms (unwrapped, frames × atoms × 3).

    Averaged over all time origins and atoms, normalised so ∫ 4πr² G_s dr = 1 (Å⁻³);
    displacements beyond ``r_max_A`` are lost from the normalisation, as they are from the
    definition's histogram. Returns bin centres (Å) and G_s (lags × bins).
    """
    x = np.asarray(positions_A, float)
    edges, r, shell = _radial_grid(r_max_A, bin_A)
    out = np.zeros((len(lags_ps), len(r)))
    for k, lag in enumerate(lags_ps):
        m = int(round(lag / dt_ps))
        if m < 1 or m >= len(x):
            raise PhonionError(f"lag {lag} ps outside the trajectory (frame step {dt_ps} ps)")
        d = np.linalg.norm(x[m:] - x[:-m], axis=2).ravel()
        out[k] = np.histogram(d, edges)[0] / (d.size * shell)
    return r, out


def van_hove_distinct(positions_A: np.ndarray, cell_A: np.ndarray, dt_ps: float,
                      lags_ps: np.ndarray, r_max_A: float = 8.0, bin_A: float = 0.05,
                      max_origins: int = 200) -> tuple[np.ndarray, np.ndarray, float]:
    """Seed 002 eq. 8: the distinct part G_d(r, Δt) of the van Hove function of the given
    atoms (unwrapped, frames × atoms × 3): the density of the *other* atoms j ≠ i at time t
    around where atom i is at t + Δt, (1/(4πr² N)) ⟨Σ_i Σ_{j≠i} δ(r − |r_i(t+Δt) − r_j(t)|)⟩,
    all periodic images, averaged over up to ``max_origins`` evenly spaced time origins.
    G_d → (N − 1)/V at long range (the other atoms only); G_d(r, 0) = (N − 1)/V · g(r).
    A peak at r → 0 growing with Δt is one ion arriving where another was (seed 002:
    concerted migration).
    ``r_max_A`` is capped at the cell's inscribed diameter (every pair among the 27 nearest
    images). Returns bin centres (Å), G_d (lags × bins, Å⁻³) and the r_max used."""
    x = np.asarray(positions_A, float)
    cell = np.asarray(cell_A, float)
    n = x.shape[1]
    r_max_A = min(r_max_A, inscribed_diameter_A(cell))
    edges, r, shell = _radial_grid(r_max_A, bin_A)
    inv = np.linalg.inv(cell)
    shifts = [(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)]
    images = np.array(shifts, float) @ cell
    other = ~np.eye(n, dtype=bool)
    out = np.zeros((len(lags_ps), len(r)))
    for k, lag in enumerate(lags_ps):
        m = int(round(lag / dt_ps))
        if m < 0 or m >= len(x):
            raise PhonionError(f"lag {lag} ps outside the trajectory (frame step {dt_ps} ps)")
        origins = _frames(len(x) - m, max_origins)
        for t0 in origins:
            diff = x[t0 + m][:, None, :] - x[t0][None, :, :]  # i at t + Δt, j at t
            diff -= np.rint(diff @ inv) @ cell
            d = np.linalg.norm(diff[other][:, None, :] + images, axis=-1).ravel()
            out[k] += np.histogram(d[d < edges[-1]], edges)[0]
        out[k] /= len(origins) * n * shell
    return r, out, float(r_max_A)
