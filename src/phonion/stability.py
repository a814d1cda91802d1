"""Stability: the dynamic-stability screen (seed 000 §2.3; DESIGN step 6).

A material is dynamically stable when no mode on a Γ-centred q-mesh *or* on the
seekpath band path lies below ``-tolerance_THz``, apart from the three acoustic
modes at Γ (whose small negative values come from sum-rule residue).

An unstable verdict gets a second look before it stops a material
(:func:`second_look`): the softest modes at the q-points the supercell holds exactly
(its commensurate points, where the fitted fc2 needs no interpolation) are frozen into the
supercell and the model's own forces at ± a small amplitude give the curvature along each
of them by central finite differences. A mode the model confirms makes the verdict; a
fit whose frequency the model contradicts is a fit artefact, and the material fails for
that reason, never as "dynamically unstable".
"""

from __future__ import annotations

import numpy as np

from .harmonic import acoustic_cutoff, band_path, gamma_acoustic_mask, mesh_modes, mesh_numbers
from .settings import StabilitySettings

#: √(eV / (Å² amu)) / 2π in THz: a curvature per mass in eV/Å²/amu to a frequency.
EV_A2_AMU_TO_THZ2 = 15.633302**2


def assess_stability(ph, s: StabilitySettings = StabilitySettings(), calculator=None
                     ) -> tuple[dict, dict]:
    """Verdict and evidence: lowest frequencies, imaginary-mode counts, where they are,
    and the acoustic cutoff of the band path; plus the band-path arrays for the figure.

    The mesh is Γ-centred with ``s.mesh_length_A`` (Å, phonopy's length rule).
    Frequencies are THz; phonopy reports imaginary frequencies as negative numbers.
    With a ``calculator`` (the model that made the forces, or a function without arguments
    that loads it, called only when needed) an unstable verdict gets :func:`second_look`;
    ``verdict`` is then ``stable``, ``unstable`` or ``fit_artefact`` (``stable`` is None for
    an artefact: the fit says nothing either way).
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
    out["verdict"] = "stable" if out["stable"] else "unstable"
    out["n_imaginary_modes"] = n_imag
    out["lowest_frequency_THz"] = worst[0]
    out["reason"] = "" if out["stable"] else (
        f"dynamically unstable: {n_imag} modes below -{tolerance_THz} THz, lowest "
        f"{worst[0]:.2f} THz at q = {np.round(worst[2], 3).tolist()} ({worst[1]})")
    if not out["stable"] and calculator is not None:
        from ase.calculators.calculator import BaseCalculator

        if not isinstance(calculator, BaseCalculator):
            calculator = calculator()
        look = second_look(ph, calculator, tolerance_THz)
        out["second_look"] = look
        out.update(_second_look_verdict(look, out["reason"]))
    arrays = path.arrays()
    return out, arrays


def _describe(mode: dict) -> str:
    return (f"{mode['fitted_THz']:.2f} THz at q = {mode['qpoint']} in the fit, "
            f"{mode['direct_THz']:.2f} THz from the model's forces along it")


def _second_look_verdict(look: dict, reason: str) -> dict:
    """``verdict``/``stable``/``reason`` after :func:`second_look` of an unstable fit.

    A direct frequency below −tolerance proves the instability whatever the fit (the
    model's curvature along a pattern bounds its lowest eigenvalue from above); without
    one, a mode the model contradicts makes the fit an artefact."""
    if not look["checked"]:
        return {"reason": reason + " (between the supercell's commensurate q-points only: "
                "interpolated, not checked by finite displacement)"}
    bad = [c for c in look["checked"] if not c["agree"]]
    if look["confirmed"]:
        first = min(look["checked"], key=lambda c: c["direct_THz"])
        note = (f"; the fit is off along another mode ({_describe(bad[0])})" if bad else "")
        return {"reason": f"{reason}; confirmed by finite displacement along the softest "
                f"commensurate mode ({_describe(first)}){note}"}
    if bad:
        return {"verdict": "fit_artefact", "stable": None, "reason": (
            f"fit artefact, no stability verdict: {_describe(bad[0])} (± finite "
            "displacement): the force constants cannot be trusted; check the fit "
            "(fit_ifc.json) or run phonons.fd_check")}
    first = look["checked"][0]
    return {"reason": f"{reason}; consistent with finite displacement along the softest "
            f"commensurate mode ({_describe(first)})"}


def commensurate_qpoints(ph) -> np.ndarray:
    """The q-points (reduced coordinates of the primitive cell) that the supercell of ``ph``
    holds exactly: q with P·q integer for its supercell matrix P relative to the primitive
    cell (phonopy ``get_commensurate_points``). The fitted fc2 gives these frequencies
    without interpolation."""
    from phonopy.harmonic.dynmat_to_fc import get_commensurate_points

    # rows convention: supercell = P @ primitive; phonopy takes the columns form P.T
    P = np.rint(np.linalg.inv(ph.primitive.cell.T) @ ph.supercell.cell.T).astype(int)
    return np.asarray(get_commensurate_points(P))


def mode_pattern(ph, q, eigenvector: np.ndarray, amplitude_A: float) -> np.ndarray:
    """Real displacement pattern (N_supercell, 3) in Å of the mode with ``eigenvector``
    (phonopy's, 3·n_primitive complex) at ``q``: u_j = Re(e^{iφ} e_p exp(2πi q·x_j))/√m_p
    for supercell atom j of primitive atom p at x_j (primitive reduced coordinates),
    scaled so that the largest atomic displacement is ``amplitude_A``; φ is 0 or π/2,
    whichever gives the larger pattern."""
    prim, sc = ph.primitive, ph.supercell
    p_of = np.array([prim.p2p_map[i] for i in prim.s2p_map])
    x = sc.scaled_positions @ sc.cell @ np.linalg.inv(prim.cell)
    e = np.asarray(eigenvector).reshape(-1, 3)[p_of] / np.sqrt(np.asarray(prim.masses))[
        p_of, None]
    wave = e * np.exp(2j * np.pi * (x @ np.asarray(q)))[:, None]
    u = max((np.real(wave), np.imag(wave)), key=np.linalg.norm)
    return amplitude_A * u / np.linalg.norm(u, axis=1).max()


def curvature_THz(pattern_A: np.ndarray, masses_amu: np.ndarray, force_difference: np.ndarray
                  ) -> float:
    """Signed frequency (THz; negative = imaginary) of the curvature along ``pattern_A``:
    ω² = −u·ΔF / (2 uᵀMu) with ΔF = F(+u) − F(−u) (eV/Å) the central difference of the
    forces (for a fitted fc2, ΔF = −2Φu exactly)."""
    num = -float(np.sum(pattern_A * force_difference)) / 2.0
    den = float(np.sum(masses_amu[:, None] * pattern_A**2))
    w2 = num / den * EV_A2_AMU_TO_THZ2
    return float(np.sign(w2) * np.sqrt(abs(w2)))


def second_look(ph, calculator, tolerance_THz: float = 0.1, n_modes: int = 3,
                amplitude_A: float = 0.01, agreement_THz2: float = 1.0,
                agreement_relative: float = 0.5) -> dict:
    """Check the fitted fc2 of ``ph`` against the model along its softest modes at the
    supercell's commensurate q-points (:func:`commensurate_qpoints`; Γ acoustic excepted):
    up to ``n_modes`` modes below ``-tolerance_THz`` (the softest, at distinct q up to sign;
    it stops at the first that the model confirms and the fit agrees with), each frozen
    into the supercell with ``amplitude_A`` (Å, largest atom) and evaluated at
    ± that pattern with ``calculator``. A direct frequency agrees with the fitted one when
    their squares ω² (the curvatures) differ by less than
    ``agreement_THz2`` (THz²) or ``agreement_relative`` of the larger |ω²|. Curvatures, not
    frequencies: near zero a frequency is the square root of a small difference, and along
    a fitted eigenvector the model's curvature also holds the small admixture of stiff modes
    that any fit error leaves (0.1 % of a 40 THz azide stretch is +1.6 THz²).

    Returns ``checked`` (per mode: q, band, fitted and direct THz, agree), ``confirmed``
    (some direct frequency below ``-tolerance_THz``: the model itself is unstable along it,
    whatever the fit), ``contradicted`` (some mode disagrees) and ``n_force_evaluations``;
    nothing is evaluated when no commensurate mode is below ``-tolerance_THz``."""
    from ase import Atoms

    from .harmonic import Modes

    qs = commensurate_qpoints(ph)
    res = ph.run_qpoints(qs, with_eigenvectors=True)
    f = np.asarray(res.frequencies)
    modes = Modes(qs, np.full(len(qs), 1.0 / len(qs)), f, np.asarray(res.eigenvectors),
                  ph.primitive.masses)
    f = np.where(gamma_acoustic_mask(modes), np.inf, f)
    order = np.argsort(f, axis=None)
    picked: list[tuple[int, int]] = []
    for flat in order:
        iq, ib = np.unravel_index(flat, f.shape)
        if f[iq, ib] >= -tolerance_THz or len(picked) == n_modes:
            break
        if any(np.allclose(np.mod(qs[iq] + s * qs[j] + 0.5, 1) - 0.5, 0, atol=1e-8)
               or abs(f[iq, ib] - f[j, b]) < 1e-4 for j, b in picked for s in (-1, 1)):
            continue  # one mode per q (and −q) and per frequency (a star): the next says more
        picked.append((int(iq), int(ib)))
    out: dict = {"commensurate_lowest_frequency_THz": float(f.min()),
                 "n_commensurate_qpoints": len(qs), "checked": [],
                 "confirmed": False, "contradicted": False, "n_force_evaluations": 0}
    if not picked:
        return out
    sc = ph.supercell
    atoms = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
    atoms.calc = calculator
    base = atoms.positions.copy()
    masses = np.asarray(sc.masses)
    fc2 = np.asarray(ph.force_constants)
    for iq, ib in picked:
        if any(c["agree"] and c["direct_THz"] < -tolerance_THz for c in out["checked"]):
            break  # the instability is proven and the fit agrees: more modes add nothing
        u = mode_pattern(ph, qs[iq], modes.eigenvectors[iq][:, ib], amplitude_A)
        fitted = curvature_THz(u, masses, 2 * -np.einsum("ijab,jb->ia", fc2, u))
        forces = []
        for sign in (1, -1):
            atoms.positions = base + sign * u
            forces.append(atoms.get_forces().copy())
        direct = curvature_THz(u, masses, forces[0] - forces[1])
        w2_direct, w2_fitted = np.sign(direct) * direct**2, np.sign(fitted) * fitted**2
        agree = bool(abs(w2_direct - w2_fitted) <= max(
            agreement_THz2, agreement_relative * max(abs(w2_direct), abs(w2_fitted))))
        out["checked"].append({"qpoint": np.round(qs[iq], 6).tolist(), "band": ib,
                               "fitted_THz": float(f[iq, ib]),
                               "fitted_along_pattern_THz": fitted, "direct_THz": direct,
                               "agree": agree})
        out["n_force_evaluations"] += 2
    out["confirmed"] = any(c["direct_THz"] < -tolerance_THz for c in out["checked"])
    out["contradicted"] = not all(c["agree"] for c in out["checked"])
    return out
