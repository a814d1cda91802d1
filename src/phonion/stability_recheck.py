"""The stability screen with a second MLP (config ``stability_recheck``): its forces on the
displaced supercells the first model used, a symfc least-squares fc2, the same verdict as
:func:`phonion.stability.assess_stability`, and both verdicts side by side. A verdict that
depends on the model is a finding about the model, not the material (docs/relax.md).

With the first model's forces on the same snapshots it also reports how far the two models
disagree, per species (:func:`force_disagreement`): a committee of two, the per-material
uncertainty of the potential (issue 26)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .settings import StabilityRecheckSettings


def force_disagreement(forces_a_eV_A: np.ndarray, forces_b_eV_A: np.ndarray,
                       symbols: np.ndarray) -> dict:
    """Disagreement of two models' forces on the same snapshots (snapshots × atoms × 3,
    eV/Å): RMS and largest per-component difference over all atoms and per species (meV/Å),
    and the RMS difference relative to the RMS force of the first model (dimensionless).
    Where the two disagree, at least one of them is off by about as much: a lower bound on
    the potential's error on these configurations (a committee of two)."""
    a = np.asarray(forces_a_eV_A, float)
    diff = (np.asarray(forces_b_eV_A, float) - a) * 1000
    symbols = np.asarray(symbols)
    out = {"force_disagreement_rms_meV_A": float(np.sqrt(np.mean(diff**2))),
           "force_disagreement_max_meV_A": float(np.abs(diff).max()),
           "force_disagreement_relative": float(np.sqrt(np.mean(diff**2))
                                                / max(np.sqrt(np.mean(a**2)) * 1000, 1e-12)),
           "force_disagreement_by_species": {}}
    for name in sorted(set(symbols)):
        d = diff[:, symbols == name]
        out["force_disagreement_by_species"][str(name)] = {
            "rms_meV_A": float(np.sqrt(np.mean(d**2))), "max_meV_A": float(np.abs(d).max())}
    return out


def recheck(displace_result: dict, first: dict, s: StabilityRecheckSettings,
            load_calculator: Callable, basis_cache: Path | None = None,
            log: Callable[[str], None] = print, first_forces=None) -> dict:
    """The second model's verdict beside the first (``first``: the stability result).
    ``load_calculator()`` returns the second model's ASE calculator; it is called only when
    the snapshots determine fc2. With ``first_forces`` (the first model's ForceSet on the
    same snapshots) the force disagreement of the two models is added. Returns the stage's
    result data (``status``, ``reason``, verdicts, lowest frequencies in THz, force
    evaluations, ``model_dependent_verdict``; with ``first_forces`` also the disagreement and
    ``extrapolating``: relative disagreement above ``s.extrapolating_above``, where the first
    model's DFT force error is expected to be a few times larger still, docs/relax.md)."""
    from .displace import free_parameters, symfc_basis
    from .fit_ifc import fit_symfc, independent_equations
    from .forces import compute_forces, reference_needed
    from .formats import atoms_from_dict
    from .harmonic import phonopy_from_displace
    from .stability import assess_stability

    sc = atoms_from_dict(displace_result["supercell"])
    listed = np.asarray(displace_result["displacements_A"])[:displace_result["n_snapshots"]]
    basis = symfc_basis(sc, cache=basis_cache)
    n_free = free_parameters(basis)[2]
    n_eq = independent_equations(listed)
    if n_eq < n_free:
        return {"status": "failed", "reason": (
            f"{n_eq} force equations for {n_free} free fc2 parameters: too few for a "
            "least-squares re-check; raise phonons.safety_factor")}
    reference = reference_needed(displace_result)
    fs = compute_forces(sc, listed, load_calculator(), reference=reference)
    ph = phonopy_from_displace(displace_result)
    ph.force_constants = fit_symfc(ph, fs.displacements_A, fs.forces_eV_A, basis=basis)
    st, _ = assess_stability(ph, s)
    first_stable = first.get("stable") if first["status"] in ("ok", "failed") else None
    name = f"{s.backend}:{s.model}" + (f" ({s.modal})" if s.modal else "")
    verdict = "stable" if st["stable"] else "unstable"
    agree = None if first_stable is None else first_stable == st["stable"]
    reason = f"{name}: {verdict}, lowest {st['lowest_frequency_THz']:.2f} THz" + (
        "" if agree is None else
        ("; agrees with the first model" if agree else
         f"; the first model says {'stable' if first_stable else 'unstable'} "
         f"({first['lowest_frequency_THz']:.2f} THz): the verdict depends on the model"))
    committee = {}
    if first_forces is not None:
        n = min(len(first_forces.forces_eV_A), len(fs.forces_eV_A))
        if n and np.allclose(first_forces.displacements_A[:n], fs.displacements_A[:n],
                             atol=1e-8):
            committee = force_disagreement(first_forces.forces_eV_A[:n], fs.forces_eV_A[:n],
                                           np.array(sc.get_chemical_symbols()))
            rel = committee["force_disagreement_relative"]
            committee["extrapolating"] = bool(rel > s.extrapolating_above)
            reason += (f"; forces differ by {committee['force_disagreement_rms_meV_A']:.0f} "
                       f"meV/Å RMS ({100 * rel:.0f} % of the forces)")
            if committee["extrapolating"]:
                reason += (f", above stability_recheck.extrapolating_above = "
                           f"{s.extrapolating_above:g}: the models extrapolate here")
    log(reason)
    return {"second_model": name, "stable": st["stable"], **committee,
            "model_dependent_verdict": None if agree is None else not agree,
            "lowest_frequency_THz": st["lowest_frequency_THz"],
            "n_imaginary_modes": st["n_imaginary_modes"],
            "acoustic_cutoff_THz": st["acoustic_cutoff_THz"],
            "first_model_stable": first_stable,
            "first_model_lowest_frequency_THz": first.get("lowest_frequency_THz"),
            "verdicts_agree": agree,
            "n_force_evaluations": len(listed) + int(reference),
            "status": "ok", "reason": reason}
