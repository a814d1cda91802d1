"""Hops of the mobile ion and their coupling to polyanion rotations (seed 001's
paddle-wheel analysis): hop events from the displacement over a window, and the angular
displacement of the nearest unit around each hop. Used by :mod:`phonion.dynamics`."""

from __future__ import annotations

import numpy as np


def hop_events(positions_A: np.ndarray, dt_ps: float, a_A: float = 3.8,
               residence_ps: float = 3.0, window_ps: float = 9.0,
               resolution_ps: float = 0.05) -> tuple[np.ndarray, float]:
    """Seed 001 eq. 5: h_i(t; a, Δt, t_a) for every atom and frame (bool, frames × atoms).

    h_i(t) = Π_{t' = t_a/2 − Δt}^{t_a/2} θ(|r_i(t + t') − r_i(t − t')| − a): atom i has made a
    displacement of at least ``a_A`` that stays made for the residence time Δt on both
    sides. Frames closer than t_a/2 to either end of the run cannot be tested and get 0.

    The product runs over t' on a grid of ``resolution_ps`` (frames are subsampled to it):
    a residence of picoseconds needs no femtosecond sampling, and the full grid would cost
    O(frames × t_a/dt × atoms). Returns h on the subsampled frames and their spacing (ps).
    """
    stride = max(int(round(resolution_ps / dt_ps)), 1)
    x = np.asarray(positions_A, float)[::stride]
    dt_ps = dt_ps * stride
    n = len(x)
    half = int(round(window_ps / 2 / dt_ps))
    first = max(int(round((window_ps / 2 - residence_ps) / dt_ps)), 0)
    h = np.zeros(x.shape[:2], dtype=bool)
    if 2 * half >= n:
        return h, dt_ps
    t = np.arange(half, n - half)
    ok = np.ones((len(t), x.shape[1]), dtype=bool)
    for tp in range(first, half + 1):
        ok &= np.linalg.norm(x[t + tp] - x[t - tp], axis=2) >= a_A
    h[t] = ok
    return h, dt_ps


def count_hops(h: np.ndarray) -> int:
    """Number of events: runs of consecutive h = 1 frames, counted per atom."""
    rises = np.diff(h.astype(np.int8), axis=0, prepend=0) == 1
    return int(rises.sum())


def _angular_displacement(v: np.ndarray) -> np.ndarray:
    """Angle (degrees) between v(t) and v(0) along axis 0."""
    u = v / np.linalg.norm(v, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip((u * u[:1]).sum(axis=-1), -1.0, 1.0)))


def hop_rotation_coupling(positions_A: np.ndarray, cell_A: np.ndarray, unit,
                          mobile_idx: np.ndarray, shell_A: float) -> dict:
    """Seed 001 Fig. 3d: cation–anion rotational coupling of one unit type (``unit``: a
    :class:`phonion.dynamics.Polyanions`).

    Every (centre C, mobile ion M) pair with M inside C's first shell (distance <
    ``shell_A``) in every frame is one event; A is the ligand of C closest to M in the first
    frame. Its coupling is the Pearson coefficient between the angular displacements (from
    the first frame) of the C–M and C–A bond vectors; the descriptor is the mean over
    events. Returns the mean, the number of events and the per-event coefficients.
    """
    cell = np.asarray(cell_A)
    inv = np.linalg.inv(cell)
    ligand_vec = unit.vectors(positions_A)  # frames × units × L × 3
    coeffs = []
    for u, c in enumerate(unit.centres):
        d0 = positions_A[0, mobile_idx] - positions_A[0, c]
        shift = -np.rint(d0 @ inv) @ cell  # minimum image at frame 0, kept after
        cm = positions_A[:, mobile_idx] - positions_A[:, c][:, None, :] + shift
        inside = np.all(np.linalg.norm(cm, axis=2) < shell_A, axis=0)
        for k in np.nonzero(inside)[0]:
            ca = ligand_vec[:, u]
            closest = int(np.argmin(np.linalg.norm(ca[0] - cm[0, k], axis=1)))
            th_m = _angular_displacement(cm[:, k])
            th_a = _angular_displacement(ca[:, closest])
            if th_m[1:].std() == 0 or th_a[1:].std() == 0:
                continue
            coeffs.append(float(np.corrcoef(th_m[1:], th_a[1:])[0, 1]))
    return {"mean_pearson": float(np.mean(coeffs)) if coeffs else None,
            "n_events": len(coeffs), "pearson": coeffs}
