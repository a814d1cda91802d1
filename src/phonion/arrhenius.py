"""Arrhenius: activation energy and prefactor from D(T), conductivity by Nernst–Einstein.

D(T) = D0 exp(−Ea / kB T): weighted least squares of ln D against 1/T with weights from the
standard errors of D (σ_lnD = σ_D / D); errors of Ea and D0 from the covariance, scaled by
the reduced χ² when there are more than two temperatures. σ(T) = n q² D / (kB T)
(seed 001 eq. 2; Haven ratio 1) for the mobile-ion number density n.
"""

from __future__ import annotations

import numpy as np

KB_EV_K = 8.617333262e-5
E_C = 1.602176634e-19
KB_J_K = 1.380649e-23


def arrhenius(temperatures_K, d_A2_ps, stderr_A2_ps=None) -> dict:
    """Fit ln D = ln D0 − Ea/(kB T); returns Ea (eV), D0 (Å²/ps) and their errors."""
    T = np.asarray(temperatures_K, float)
    D = np.asarray(d_A2_ps, float)
    if len(T) < 2 or np.any(D <= 0):
        raise ValueError("Arrhenius fit needs >= 2 temperatures with D > 0")
    sig = (np.asarray(stderr_A2_ps, float) / D) if stderr_A2_ps is not None else np.ones_like(D)
    sig = np.where(np.isfinite(sig) & (sig > 0), sig, np.nanmax(sig[np.isfinite(sig)])
                   if np.isfinite(sig).any() else 1.0)
    A = np.column_stack([np.ones_like(T), -1.0 / (KB_EV_K * T)])
    W = 1.0 / sig**2
    cov = np.linalg.inv(A.T @ (A * W[:, None]))
    coef = cov @ (A.T @ (W * np.log(D)))
    resid = np.log(D) - A @ coef
    dof = len(T) - 2
    if dof > 0:
        cov = cov * max(1.0, float(np.sum(W * resid**2) / dof))
    ln_d0, ea = coef
    return {
        "ea_eV": float(ea), "ea_stderr_eV": float(np.sqrt(cov[1, 1])),
        "d0_A2_ps": float(np.exp(ln_d0)),
        "d0_stderr_A2_ps": float(np.exp(ln_d0) * np.sqrt(cov[0, 0])),
        "n_temperatures": int(len(T)),
    }


def extrapolate(fit: dict, temperature_K: float) -> float:
    """D (Å²/ps) at ``temperature_K`` from an Arrhenius fit."""
    return fit["d0_A2_ps"] * np.exp(-fit["ea_eV"] / (KB_EV_K * temperature_K))


def nernst_einstein_S_cm(d_A2_ps: float, n_per_A3: float, temperature_K: float,
                         charge: float = 1.0) -> float:
    """Ionic conductivity σ = n (z e)² D / (kB T), in S/cm."""
    d_m2_s = d_A2_ps * 1e-8
    n_m3 = n_per_A3 * 1e30
    sigma_S_m = n_m3 * (charge * E_C) ** 2 * d_m2_s / (KB_J_K * temperature_K)
    return float(sigma_S_m / 100.0)
