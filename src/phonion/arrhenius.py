"""Arrhenius: activation energy and prefactor from D(T), conductivity by Nernst–Einstein.

D(T) = D0 exp(−Ea / kB T): weighted least squares of ln D against 1/T with weights from the
standard errors of D (σ_lnD = σ_D / D); errors of Ea and D0 from the covariance, scaled by
the reduced χ² when there are more than two temperatures. σ(T) = n (z e)² D / (kB T)
(seed 001 eq. 2; Haven ratio 1) for the mobile-ion number density n and charge z.

The verb of the stage is :func:`arrhenius_stage` (diffusion results of one material at
several temperatures → Ea, D0, D and σ at 300 K, σ at every temperature).
"""

from __future__ import annotations

import numpy as np
from scipy import constants

from .errors import PhonionError
from .settings import ArrheniusSettings

KB_EV_K = constants.k / constants.e  # Boltzmann constant, eV/K


class ArrheniusError(PhonionError):
    """Too few usable temperatures, or a D that is not positive."""


def arrhenius(temperatures_K, d_A2_ps, stderr_A2_ps=None) -> dict:
    """Fit ln D = ln D0 − Ea/(kB T); returns Ea (eV), D0 (Å²/ps) and their errors."""
    T = np.asarray(temperatures_K, float)
    D = np.asarray(d_A2_ps, float)
    if len(T) < 2 or np.any(D <= 0):
        raise ArrheniusError("Arrhenius fit needs >= 2 temperatures with D > 0")
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
    return float(fit["d0_A2_ps"] * np.exp(-fit["ea_eV"] / (KB_EV_K * temperature_K)))


def nernst_einstein_S_cm(d_A2_ps: float, n_per_A3: float, temperature_K: float,
                         charge: float = 1.0) -> float:
    """Ionic conductivity σ = n (z e)² D / (kB T), in S/cm."""
    d_m2_s = d_A2_ps * 1e-8
    n_m3 = n_per_A3 * 1e30
    sigma_S_m = n_m3 * (charge * constants.e) ** 2 * d_m2_s / (constants.k * temperature_K)
    return float(sigma_S_m / 100.0)


#: Usual oxidation state of common mobile ions (the sign does not enter σ ∝ z²).
ION_CHARGES = {"H": 1, "Li": 1, "Na": 1, "K": 1, "Rb": 1, "Cs": 1, "Ag": 1, "Cu": 1, "Tl": 1,
               "Mg": 2, "Ca": 2, "Zn": 2, "Sr": 2, "Ba": 2, "Al": 3, "F": -1, "Cl": -1,
               "Br": -1, "I": -1, "O": -2, "S": -2}


def ion_charge(symbol: str, charge: int | None = None) -> int:
    """Charge number z of the mobile ion: ``charge`` when given (config
    ``mobile_ion_charge``), else its usual oxidation state (:data:`ION_CHARGES`, then
    pymatgen's most common one)."""
    if charge:
        return int(charge)
    if symbol in ION_CHARGES:
        return ION_CHARGES[symbol]
    from pymatgen.core import Element

    states = Element(symbol).common_oxidation_states
    if not states:
        raise ArrheniusError(f"no usual oxidation state of {symbol}; set mobile_ion_charge")
    return int(states[0])


def arrhenius_stage(diffusion_results: list[dict], s: ArrheniusSettings = ArrheniusSettings()
                    ) -> dict:
    """Ea, D0 (≥ 2 usable temperatures), D and σ at 300 K, and σ at every temperature
    from the ``diffusion`` results of one material. Results that are not ``ok``, have no
    diffusive regime (no D, only a bound) or D ≤ 0 are left out (their temperatures are
    listed)."""
    usable = [r for r in diffusion_results
              if r["status"] == "ok" and r.get("diffusive") and (r["d_avg_A2_ps"] or 0) > 0]
    z = ion_charge(s.mobile_ion, s.charge)
    out: dict = {
        "mobile_ion": s.mobile_ion, "mobile_ion_charge": z,
        "temperatures_K": [r["temperature_K"] for r in usable],
        "d_avg_A2_ps": [r["d_avg_A2_ps"] for r in usable],
        "d_avg_stderr_A2_ps": [r["d_avg_stderr_A2_ps"] for r in usable],
        "temperatures_left_out_K": [r.get("temperature_K") for r in diffusion_results
                                    if r not in usable],
    }
    for r in usable:
        out[f"sigma_{r['temperature_K']:g}K_S_cm"] = nernst_einstein_S_cm(
            r["d_avg_A2_ps"], r["mobile_ion_density_per_A3"], r["temperature_K"], z)
    if len(usable) < 2:
        left = ", ".join(f"{t:g}" for t in out["temperatures_left_out_K"] if t is not None)
        out["reason"] = (
            f"D at {len(usable)} temperature(s), no Ea (needs D at >= 2)"
            + (f"; no D at {left} K (D not resolved or the ion does not diffuse, or not "
               "ok: see diffusion)"
               if left else ""))
        return out
    fit = arrhenius(out["temperatures_K"], out["d_avg_A2_ps"], out["d_avg_stderr_A2_ps"])
    d300 = extrapolate(fit, 300.0)
    out.update(fit, d_300K_A2_ps=d300, sigma_300K_S_cm=nernst_einstein_S_cm(
        d300, usable[0]["mobile_ion_density_per_A3"], 300.0, z))
    return out
