"""Anharmonic descriptors from an MD run (seed 003, Table 1 "AIMD" D–V descriptors): the
vibrational thermodynamics of the MD vibrational density of states, its mean frequencies
and Debye temperature, and the Lindemann ratio of the host.

The MD samples the anharmonic potential at temperature T, so these are the finite-T
counterparts of the harmonic descriptors of :mod:`phonion.phonon_descriptors` (seed 003
compares the two families as predictors of D).

Definitions (frequencies ν in THz, ħω = hν):

* ⟨ω⟩ and ⟨ω₃₀⟩: seed 003 eqs. 6 and 7, the first moment of the VDOS of eq. 5 (the plain
  velocity autocorrelation, summed over the ions), the second cut at ω_max = 30 meV
  (7.25 THz). :func:`phonion.correlations.vdos` is eq. 5.
* E_vib, C_V, F_vib, S_vib: the harmonic-oscillator expressions (seed 003 §Methods points
  to the literature; these are the ones phonopy evaluates on the phonon DOS) integrated over
  the *mass-weighted* VDOS normalised to the MD's modes (3N − 3 with the centre of mass
  fixed, :func:`modes_per_atom`): in a harmonic crystal at equipartition every mode carries
  k_B T of kinetic energy whatever its atoms' masses, so the mass-weighted velocity spectrum
  is the phonon DOS of the q-points commensurate with the MD cell; the plain one of eq. 5
  weights light atoms up. Quantum occupations on the classical spectrum, as for the harmonic
  descriptors;
  per atom (meV, k_B).
* θ_D: the Debye temperature of the spectrum's second moment, θ_D = (h/k_B)·√(5⟨ν²⟩/3)
  (a Debye spectrum g ∝ ν² up to ν_D has ⟨ν²⟩ = 3ν_D²/5; Grimvall, *Thermophysical
  Properties of Materials*, θ_D(2)).
* Lindemann ratio γ: √⟨|r − ⟨r⟩|²⟩ of the host atoms about their time-averaged sites over
  the mean distance from a host atom to its nearest host neighbour in the time-averaged
  structure (the mobile ions' averages are no sites when they diffuse).

Hand-written: the thermodynamic integrals over a given spectrum are a few lines, and
phonopy evaluates them only on its own mesh frequencies, not on an MD spectrum.
"""

from __future__ import annotations

import numpy as np

from .correlations import spectrum, vacf_per_atom, vdos_centre, vdos_support_max

#: h/k_B in K/THz and h in meV/THz
H_OVER_KB_K_THZ = 47.99243073
H_MEV_THZ = 4.135667696
KB_MEV_K = 0.08617333262
#: seed 003 eq. 7 cut-off: 30 meV in THz
NU_30MEV_THZ = 30.0 / H_MEV_THZ


def modes_per_atom(masses_amu: np.ndarray, subset: np.ndarray) -> float:
    """Vibrational modes per atom of ``subset`` (boolean mask) in an MD whose centre of mass
    is fixed (FixCom with Langevin; conserved momentum with Bussi, Nosé–Hoover and AIMD):
    3N − 3 modes in all, of which the missing uniform translation (mass-weighted eigenvector
    ∝ √m_i) takes the share M_s/M from the subset, so it has 3(N_s − M_s/M)."""
    m = np.asarray(masses_amu, float)
    n_s = int(np.count_nonzero(subset))
    return 3.0 * (n_s - m[subset].sum() / m.sum()) / n_s


def mass_weighted_vdos(velocities_A_ps: np.ndarray, dt_ps: float, masses_amu: np.ndarray,
                       subset: np.ndarray | None = None, acf: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The phonon-DOS-like spectrum of the atoms in ``subset`` (default all; frequency THz,
    g integrating to :func:`modes_per_atom`): the mass-weighted velocity autocorrelation of
    :func:`phonion.correlations.vdos` (``acf``: the per-atom VACF when already at hand,
    :func:`phonion.correlations.vacf_per_atom`)."""
    masses = np.asarray(masses_amu, float)
    subset = np.ones(len(masses), bool) if subset is None else np.asarray(subset, bool)
    if acf is None:
        acf = vacf_per_atom(velocities_A_ps)
    freq, g = spectrum(acf @ np.where(subset, masses, 0.0), dt_ps)
    return freq, modes_per_atom(masses, subset) * g


def thermodynamics(freq_THz: np.ndarray, g: np.ndarray, temperature_K: float,
                   nu_max_THz: float | None = None) -> dict:
    """E_vib, F_vib (meV/atom), S_vib, C_V (k_B/atom) of the modes of ``g`` (per atom,
    normalised as given) at ``temperature_K``, from the harmonic-oscillator expressions
    (quantum occupations), over 0 < ν ≤ ``nu_max_THz`` (default: the end of the spectrum
    above its noise floor, :func:`~phonion.correlations.vdos_support_max`), the mode count
    kept when the noise above is cut. The ν = 0 bin (diffusion) is left out: the integrands
    are finite (C_V, E) or integrable (F, S ~ ln ν) there."""
    if nu_max_THz is None:
        nu_max_THz = vdos_support_max(freq_THz, g)
    count = np.trapezoid(g, freq_THz)
    sel = (freq_THz > 0) & (freq_THz <= nu_max_THz)
    nu, w = freq_THz[sel], g[sel]
    w = count * w / np.trapezoid(w, nu)
    x = H_OVER_KB_K_THZ * nu / temperature_K
    kt = KB_MEV_K * temperature_K
    n = 1.0 / np.expm1(x)
    e = np.trapezoid(w * H_MEV_THZ * nu * (0.5 + n), nu)
    cv = np.trapezoid(w * x**2 * np.exp(x) * n**2, nu)
    f = np.trapezoid(w * (0.5 * H_MEV_THZ * nu + kt * np.log(-np.expm1(-x))), nu)
    s = np.trapezoid(w * (x * n - np.log(-np.expm1(-x))), nu)
    return {"e_vib_meV_atom": float(e), "f_vib_meV_atom": float(f),
            "s_vib_kB_atom": float(s), "cv_kB_atom": float(cv)}


def debye_temperature_K(freq_THz: np.ndarray, g: np.ndarray, nu_max_THz: float | None = None
                        ) -> float:
    """θ_D = (h/k_B)·√(5⟨ν²⟩/3) of the spectrum up to ``nu_max_THz`` (default: its end
    above the noise floor)."""
    if nu_max_THz is None:
        nu_max_THz = vdos_support_max(freq_THz, g)
    sel = (freq_THz > 0) & (freq_THz <= nu_max_THz)  # as the thermodynamics: no ν = 0
    m2 = np.trapezoid(g[sel] * freq_THz[sel] ** 2, freq_THz[sel]) / np.trapezoid(
        g[sel], freq_THz[sel])
    return float(H_OVER_KB_K_THZ * np.sqrt(5.0 * m2 / 3.0))


def lindemann_ratio(positions_A: np.ndarray, cell_A: np.ndarray, host: np.ndarray) -> float:
    """γ = √⟨|r − ⟨r⟩|²⟩ / d_nn of the ``host`` atoms (boolean mask): the RMS displacement
    about the time-averaged sites (unwrapped positions, frames × atoms × 3, Å; drift of the
    host centre removed) over the mean distance from a host atom to its nearest host atom
    (minimum image) in the time-averaged structure."""
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    pos = np.asarray(positions_A, float)
    pos = pos - (pos[:, host].mean(axis=1) - pos[0, host].mean(axis=0))[:, None, :]
    mean = pos.mean(axis=0)
    u2 = ((pos[:, host] - mean[host]) ** 2).sum(axis=2).mean()
    # the host's own sites: a diffusing ion's time average is no site
    atoms = Atoms(positions=mean[host], cell=cell_A, pbc=True)
    atoms.wrap()
    cutoff = 1.0
    while True:  # grow the search radius until every host atom has a neighbour
        i, d = neighbor_list("id", atoms, cutoff)
        nearest = np.full(len(atoms), np.inf)
        np.minimum.at(nearest, i, d)
        if np.isfinite(nearest).all() or cutoff > 20:
            break
        cutoff *= 1.5
    return float(np.sqrt(u2) / nearest.mean())


def anharmonic_descriptors(traj: dict, mobile_ion: str, temperature_K: float,
                           symbols: np.ndarray) -> tuple[dict, dict]:
    """Seed 003's AIMD D–V descriptors of one trajectory (:func:`phonion.formats.
    read_trajectory` layout, velocities required) for all atoms, the host (non-diffusive)
    and the mobile ion (diffusive): mean frequency ⟨ω⟩ (eq. 6) and ⟨ω₃₀⟩ (eq. 7) of the eq. 5
    VDOS in THz; E_vib, F_vib (meV/atom), S_vib, C_V (k_B/atom) and θ_D (K) of the
    mass-weighted VDOS; the host's Lindemann ratio. Returns the scalars and the spectra."""
    vel = np.asarray(traj["velocities_A_ps"], float)
    dt = float(traj["frame_dt_ps"])
    acf = vacf_per_atom(vel)  # one FFT for every subset and weighting below
    if traj.get("masses_amu") is not None:
        masses = np.asarray(traj["masses_amu"], float)
    else:  # a trajectory dict without masses: the standard atomic masses of its elements
        from ase.data import atomic_masses

        masses = atomic_masses[np.asarray(traj["numbers"])]
    mobile = symbols == mobile_ion
    out: dict = {}
    arrays: dict = {}
    for label, sel in (("all", np.ones(len(symbols), bool)), ("host", ~mobile),
                       ("mobile", mobile)):
        if not sel.any():
            continue
        freq, g_plain = spectrum(acf @ sel.astype(float), dt)  # eq. 5
        top = vdos_support_max(freq, g_plain)
        out[f"mean_frequency_{label}_THz"] = vdos_centre(freq, g_plain, top)  # eq. 6
        out[f"mean_frequency_30meV_{label}_THz"] = vdos_centre(  # eq. 7
            freq, g_plain, min(NU_30MEV_THZ, top))
        freq, g = mass_weighted_vdos(vel, dt, masses, sel, acf)
        top = vdos_support_max(freq, g)
        for key, value in thermodynamics(freq, g, temperature_K, top).items():
            out[key.replace("_meV_atom", f"_{label}_meV_atom").replace(
                "_kB_atom", f"_{label}_kB_atom")] = value
        out[f"debye_temperature_{label}_K"] = debye_temperature_K(freq, g, top)
        arrays[f"vdos_mass_weighted/{label}"] = g
        arrays["vdos_mass_weighted/frequency_THz"] = freq
    if (~mobile).any():
        out["lindemann_host"] = lindemann_ratio(traj["positions_A"], traj["cell_A"], ~mobile)
    return out, arrays


__all__ = ["anharmonic_descriptors", "debye_temperature_K", "lindemann_ratio",
           "mass_weighted_vdos", "modes_per_atom", "thermodynamics"]
