"""Time correlations of a trajectory: the mean-square displacement over all time origins
(per atom and direction) and the vibrational density of states from the velocity
autocorrelation, with its centre (seed 000 eq. 7). :mod:`phonion.diffusion` builds the
diffusion coefficients on them."""

from __future__ import annotations

import numpy as np


def _autocorrelation(x: np.ndarray) -> np.ndarray:
    """Σ_k x[k] x[k+m] for every lag m along axis 0 (unnormalised), by FFT."""
    n = x.shape[0]
    f = np.fft.rfft(x, n=2 * n, axis=0)
    return np.fft.irfft(f * np.conj(f), n=2 * n, axis=0)[:n]


def msd(positions_A: np.ndarray) -> np.ndarray:
    """MSD(m) per atom and direction, averaged over all time origins (frames, atoms, 3), Å².

    Algorithm of Kneller et al. (nMoldyn, Comput. Phys. Commun. 91, 191 (1995)):
    MSD(m) = [S1(m) − 2 S2(m)]/(N − m), S2 the position autocorrelation by FFT. Hand-written
    because the field's packages (kinisi, pymatgen) do not expose it per atom and direction.
    """
    x = np.asarray(positions_A, dtype=float)
    n = x.shape[0]
    d = x**2
    s2 = _autocorrelation(x)
    q = 2 * d.sum(axis=0)
    s1 = np.empty_like(x)
    for m in range(n):
        q = q - (d[m - 1] if m else 0) - (d[n - m] if m else 0)
        s1[m] = q / (n - m)
    return s1 - 2 * s2 / (n - np.arange(n))[:, None, None]


def vacf_per_atom(velocities_A_ps: np.ndarray) -> np.ndarray:
    """Velocity autocorrelation of every atom, summed over x, y, z and averaged over all
    time origins by FFT ((frames, atoms), Å²/ps²): any weighted sum over atoms of it is the
    VACF of those atoms (:func:`spectrum`)."""
    v = np.asarray(velocities_A_ps, dtype=float)
    n = v.shape[0]
    return _autocorrelation(v).sum(axis=2) / (n - np.arange(n))[:, None]


def spectrum(c: np.ndarray, dt_ps: float) -> tuple[np.ndarray, np.ndarray]:
    """One-sided power spectrum of an autocorrelation ``c`` (lags every ``dt_ps``), Hann
    window, normalised to 1: (frequency THz, g)."""
    n = len(c)
    c = c * np.hanning(2 * n)[n:]
    spec = np.abs(np.fft.rfft(np.concatenate([c, c[-1:0:-1]])))
    freq = np.fft.rfftfreq(2 * n - 1, d=dt_ps)  # 1/ps = THz
    return freq, spec / np.trapezoid(spec, freq)


def vdos(velocities_A_ps: np.ndarray, dt_ps: float, masses_amu: np.ndarray | None = None
         ) -> tuple[np.ndarray, np.ndarray]:
    """Vibrational DOS from the velocity autocorrelation (frequency THz, g normalised to 1).

    VACF by FFT over all time origins and atoms (mass-weighted when ``masses_amu`` is
    given), Hann window, one-sided power spectrum.
    """
    acf = vacf_per_atom(velocities_A_ps)
    w = np.ones(acf.shape[1]) if masses_amu is None else np.asarray(masses_amu, float)
    return spectrum(acf @ w, dt_ps)


def vdos_support_max(freq_THz: np.ndarray, g: np.ndarray, floor: float = 0.01,
                     smooth_THz: float = 0.5) -> float:
    """Upper edge (THz) of the spectrum: the highest frequency where the VDOS, smoothed over
    ``smooth_THz``, is still above ``floor`` × its maximum.

    Above it only the noise floor of a finite trajectory remains (white noise from the
    thermostat and the finite VACF extends to the Nyquist frequency, 83 THz for frames
    every 6 fs); left in, it pulls the eq. 7 centre far upwards.
    """
    df = float(freq_THz[1] - freq_THz[0])
    k = max(int(round(smooth_THz / df)), 1)
    gs = np.convolve(g, np.ones(k) / k, mode="same")
    above = np.nonzero(gs >= floor * gs.max())[0]
    return float(freq_THz[above[-1]])


def vdos_centre(freq_THz: np.ndarray, g: np.ndarray, f_max_THz: float | None = None
                ) -> float:
    """Seed 000 eq. 7: Σ ω g(ω) / Σ g(ω) (THz), summed up to ``f_max_THz``
    (default: :func:`vdos_support_max`, the end of the spectrum above its noise floor)."""
    if f_max_THz is None:
        f_max_THz = vdos_support_max(freq_THz, g)
    sel = freq_THz <= f_max_THz
    return float(np.sum(freq_THz[sel] * g[sel]) / np.sum(g[sel]))
