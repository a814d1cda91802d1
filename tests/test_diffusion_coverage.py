"""Calibration of the default diffusion estimator (docs/diffusion.md, "Estimator") on four
kinds of dynamics whose D is known exactly: its 95 % interval must cover the true D in
90-98 % of independent runs for each, and a plateau must never read as diffusion.

Each generator returns unwrapped positions (runs, frames, atoms, 3) in Å with frames
``dt`` ps apart; all runs of one kind are simulated at once (vectorised over runs).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import i0

from phonion.diffusion import estimate_diffusion

RUNS = 200


def vibrating_walk(rng, runs, frames, atoms, d, dt, sigma=0.25):
    """Free random walk plus an independent thermal vibration (Gaussian, ``sigma`` Å per
    component) at every frame: the MSD is 2nDt + 2nσ², a vibrational offset of 0.375 Å²."""
    steps = rng.normal(0, np.sqrt(2 * d * dt), (runs, frames - 1, atoms, 3))
    walk = np.concatenate([np.zeros((runs, 1, atoms, 3)), np.cumsum(steps, axis=1)], axis=1)
    return walk + rng.normal(0, sigma, walk.shape)


def lattice_hops(rng, runs, frames, atoms, rate, dt, a=2.5, sigma=0.2, cluster=1):
    """Hops of length ``a`` between sites of a cubic lattice at ``rate`` per ps along each of
    the six directions, with vibrations about the site; with ``cluster`` > 1 the atoms hop
    in rigid groups of that size (collective, string-like hops). D = rate · a² exactly."""
    groups = atoms // cluster
    n = rng.poisson(rate * dt, (2, runs, frames - 1, groups, 3))
    jumps = np.repeat(a * (n[0] - n[1]), cluster, axis=2)
    sites = np.concatenate([np.zeros((runs, 1, atoms, 3)), np.cumsum(jumps, axis=1)], axis=1)
    return sites + rng.normal(0, sigma, sites.shape)


def periodic_potential(rng, runs, frames, atoms, d0, dt, a=2.5, barrier_kT=2.0,
                       substeps=40):
    """Overdamped Brownian motion in V(x) = V0 cos(2πx/a) along each axis (caged hopping).
    Lifson & Jackson, J. Chem. Phys. 36, 2410 (1962): D = D0 / I0(V0/kT)²."""
    h = dt / substeps
    x = rng.uniform(-0.1 * a, 0.1 * a, (runs, atoms, 3))
    out = [x.copy()]
    k = 2 * np.pi / a
    for _ in range(frames - 1):
        for _ in range(substeps):
            x += d0 * barrier_kT * k * np.sin(k * x) * h + rng.normal(0, np.sqrt(2 * d0 * h),
                                                                      x.shape)
        out.append(x.copy())
    return np.stack(out, axis=1)


def coverage(trajectories, dt, d_true):
    hits, diffusive, rel = 0, 0, []
    for x in trajectories:
        est = estimate_diffusion(x, dt)
        if est.diffusive:
            diffusive += 1
            lo, hi = est.ci95_A2_ps
            hits += lo <= d_true <= hi
            rel.append(est.d_A2_ps / d_true - 1)
    return hits / len(trajectories), diffusive / len(trajectories), float(np.mean(rel))


@pytest.mark.parametrize("kind", ["vibrating walk", "lattice hops", "collective hops",
                                  "periodic potential"])
def test_95_percent_interval_covers_the_true_d(kind):
    rng = np.random.default_rng(sum(map(ord, kind)))
    dt = 0.1
    if kind == "vibrating walk":
        d, x = 0.05, vibrating_walk(rng, RUNS, 600, 24, 0.05, dt)
    elif kind == "lattice hops":
        d, x = 0.02 * 2.5**2, lattice_hops(rng, RUNS, 600, 24, 0.02, dt)
    elif kind == "collective hops":
        d, x = 0.02 * 2.5**2, lattice_hops(rng, RUNS, 600, 24, 0.02, dt, cluster=4)
    else:
        d0, kt = 0.5, 2.0
        d, x = d0 / i0(kt) ** 2, periodic_potential(rng, RUNS, 600, 16, d0, dt)
    covered, diffusive, bias = coverage(x, dt, d)
    print(f"{kind}: coverage {covered:.3f}, diffusive {diffusive:.3f}, mean bias {bias:+.3f}")
    assert diffusive >= 0.98
    assert 0.90 <= covered <= 0.98
    assert abs(bias) < 0.05


def test_a_vibrational_plateau_is_never_a_diffusion_coefficient():
    """Atoms rattling about fixed sites (an Ornstein-Uhlenbeck vibration): no D, a bound."""
    rng = np.random.default_rng(11)
    runs, frames, atoms, dt, tau = 50, 600, 24, 0.1, 0.3
    u = np.zeros((runs, atoms, 3))
    out = []
    for _ in range(frames):
        u = u * np.exp(-dt / tau) + rng.normal(0, 0.25 * np.sqrt(1 - np.exp(-2 * dt / tau)),
                                               u.shape)
        out.append(u.copy())
    x = np.stack(out, axis=1)
    for run in x:
        est = estimate_diffusion(run, dt)
        assert not est.diffusive and est.d_A2_ps is None
        assert "no long-range diffusion" in est.verdict
        assert est.upper_bound_A2_ps > 0
