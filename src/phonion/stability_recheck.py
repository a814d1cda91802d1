"""The stability screen with a second MLP (config ``stability_recheck``): by default the
second model relaxes the cell on its own, then gets the same displacement patterns the first
model saw on its supercell, a symfc least-squares fc2 and the same verdict as
:func:`phonion.stability.assess_stability`; both verdicts side by side. A verdict that
depends on the model is a finding about the model, not the material (docs/relax.md).

With the first model's forces on the same snapshots it also reports how far the two models
disagree, per species (:func:`force_disagreement`), and with the first model's fc2 the ratio
of their harmonic mobile-ion MSDs: a committee of two, the per-material uncertainty of the
potential (issue 26)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from ase import Atoms

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


class RecheckFailed(Exception):
    """The re-check cannot give a verdict (reason in the message)."""


def matching_supercell(own: Atoms, shared: Atoms, max_shift_A: float = 0.5) -> float:
    """Check that supercell ``own`` (the second model's cell) lists the atoms of ``shared``
    (the first model's) in the same order: every atom's nearest same-species site under the
    minimum image, in fractional coordinates mapped onto ``own``'s cell, is itself and
    within ``max_shift_A``. Returns the largest shift (Å); raises :class:`RecheckFailed`
    otherwise (the displacement patterns would then move other atoms than the first
    model's)."""
    if own.get_chemical_symbols() != shared.get_chemical_symbols():
        raise RecheckFailed("the second model's supercell lists other species")
    f_own, f_shared = own.get_scaled_positions(), shared.get_scaled_positions()
    d = f_own[:, None, :] - f_shared[None, :, :]
    d -= np.rint(d)
    dist = np.linalg.norm(d @ own.cell.array, axis=2)
    same = np.array(own.numbers)[:, None] == np.array(shared.numbers)[None, :]
    dist = np.where(same, dist, np.inf)
    nearest = dist.argmin(axis=1)
    shift = float(np.diag(dist).max()) if len(own) else 0.0
    if np.any(nearest != np.arange(len(own))) or shift > max_shift_A:
        raise RecheckFailed(
            f"the second model's relaxation moved atoms by up to {shift:.2f} Å: its "
            "supercell does not match the first model's atom for atom; set "
            "stability_recheck.own_relaxation: false to judge it at the first model's cell")
    return shift


def own_cell(displace_result: dict, calculator, s: StabilityRecheckSettings,
             log: Callable[[str], None] = print, start: Atoms | None = None
             ) -> tuple[object, Atoms, dict]:
    """The second model's own cell: ``start`` (the structure the first model relaxed, in
    the same atom order and lattice vectors; default: the first model's relaxed cell)
    relaxed with ``calculator`` under the campaign's relax criteria
    (:meth:`StabilityRecheckSettings.relax_settings`), symmetrized like the displace stage
    does, and its supercell with the same supercell choice. Returns the Phonopy object, the
    supercell and what the relaxation did (steps, volume against the first model's cell,
    largest atom shift).

    Why from the input structure: on a flat energy surface (layered MgI2, docs/relax.md) a
    relaxation that starts at the first model's minimum stops there within the force
    criterion, and the verdict then depends on where the first model left the cell."""
    from .formats import atoms_from_dict
    from .harmonic import SupercellChoice, phonopy_for, to_ase
    from .relax import relax, verdict
    from .symmetry import symmetrize

    first = atoms_from_dict(displace_result["primitive"])
    rs = s.relax_settings()
    r = relax(first if start is None else start, calculator, rs, logfile=None)
    status, why = verdict(r, rs)
    if status != "ok":
        raise RecheckFailed(f"the second model's own relaxation: {why}")
    prim, _ = symmetrize(r.atoms, s.displace_symprec)
    choice = SupercellChoice(np.array(displace_result["unit_matrix"]),
                             np.array(displace_result["dim"]))
    ph = phonopy_for(prim, choice, symmetry=False)
    sc = to_ase(ph.supercell)
    shift = matching_supercell(sc, atoms_from_dict(displace_result["supercell"]))
    info = {"own_relaxation_steps": r.n_steps,
            "own_volume_change": float(prim.get_volume() / first.get_volume() - 1),
            "own_max_shift_A": shift}
    log(f"relaxed with the second model in {r.n_steps} steps: volume "
        f"{100 * info['own_volume_change']:+.2f} %, atoms moved up to {shift:.3f} Å")
    return ph, sc, info


def mobile_msd_A2(ph, s: StabilityRecheckSettings) -> list[float]:
    """Harmonic mean-square displacement ⟨u_α²⟩ of the mobile ion (Å², per direction and
    mean over its atoms, as ``msd_mobile_mean_A2``; one value per ``s.temperatures_K``) on
    the mesh of ``s.mesh_length_A``: the same mesh for both models, not converged in q (a
    few % low for every model alike, docs/phonons.md), so the ratio of two models is what
    it is for."""
    from .harmonic import mesh_numbers
    from .phonon_descriptors import mesh_msd

    mobile = np.array(ph.primitive.symbols) == s.mobile_ion
    if not mobile.any():
        return []
    tensor = mesh_msd(ph, mesh_numbers(ph, s.mesh_length_A), s.temperatures_K)
    return [float(tensor[i][mobile].mean()) for i in range(len(s.temperatures_K))]


def _fit_and_screen(ph, supercell: Atoms, listed: np.ndarray, calculator, reference: bool,
                    s: StabilityRecheckSettings, basis=None):
    """Forces of ``calculator`` on the patterns ``listed`` on ``supercell``, their symfc fc2
    (set on ``ph``; ``basis``: the supercell's symfc basis, built when None) and the
    stability verdict. Returns (forces, verdict dict)."""
    from .displace import symfc_basis
    from .fit_ifc import fit_symfc
    from .forces import compute_forces
    from .stability import assess_stability

    fs = compute_forces(supercell, listed, calculator, reference=reference)
    if basis is None:
        basis = symfc_basis(supercell)
    ph.force_constants = fit_symfc(ph, fs.displacements_A, fs.forces_eV_A, basis=basis)
    st, _ = assess_stability(ph, s)
    return fs, st


def _judge(name: str, calculator, displace_result: dict, sc: Atoms, listed: np.ndarray,
           reference: bool, s: StabilityRecheckSettings, basis,
           log: Callable[[str], None], start: Atoms | None) -> dict:
    """One model of the committee: its forces on the first model's snapshots (the shared
    cell), the verdict there, and — with ``s.own_relaxation`` — at its own relaxed cell,
    which is then its verdict; where its own cell cannot be had (:class:`RecheckFailed`)
    the shared-cell verdict stands and ``own_relaxation_failed`` says why."""
    from .harmonic import phonopy_from_displace

    ph_shared = phonopy_from_displace(displace_result)
    fs, shared = _fit_and_screen(ph_shared, sc, listed, calculator, reference, s, basis)
    out = {"name": name, "forces": fs, "shared": shared, "verdict": shared, "ph": ph_shared,
           "info": {}, "n_eval": len(listed) + int(reference)}
    if s.own_relaxation:
        try:
            ph, sc_own, info = own_cell(displace_result, calculator, s, log, start)
        except RecheckFailed as err:
            # no own cell (its relaxation failed, or it found another arrangement): the
            # verdict at the first model's cell stands, with the reason beside it
            log(f"{name}: {err}; judged at the first model's cell")
            out["info"] = {"own_relaxation_failed": str(err)}
            return out
        _, st = _fit_and_screen(ph, sc_own, listed, calculator, reference, s)
        out.update(verdict=st, ph=ph, info=info)
        out["n_eval"] += len(listed) + int(reference) + info["own_relaxation_steps"]
    return out


def _agrees(first_stable, member: dict) -> bool | None:
    return None if first_stable is None else first_stable == member["verdict"]["stable"]


def _member_row(member: dict, first_stable, first_forces, symbols, first_msd, s) -> dict:
    """What one committee member says beside the first model: its verdict, its force
    disagreement with the first model on the same snapshots (with ``first_forces``) and
    the ratio of the harmonic mobile-ion MSDs when both call the material stable
    (``first_msd``: the first model's); ``msd_mobile_A2``: its own MSDs, for the reason."""
    st = member["verdict"]
    row = {"model": member["name"], "stable": st["stable"],
           "lowest_frequency_THz": st["lowest_frequency_THz"],
           "shared_cell_lowest_frequency_THz": member["shared"]["lowest_frequency_THz"],
           "verdict_differs": None if first_stable is None
           else not _agrees(first_stable, member), **member["info"]}
    if first_forces is not None:
        n = min(len(first_forces.forces_eV_A), len(member["forces"].forces_eV_A))
        row.update(force_disagreement(first_forces.forces_eV_A[:n],
                                      member["forces"].forces_eV_A[:n], symbols))
    if first_msd and st["stable"]:
        msd = mobile_msd_A2(member["ph"], s)
        row["msd_mobile_A2"] = msd
        row["msd_mobile_ratio_by_temperature_K"] = {
            f"{T:g}": b / a for T, a, b in zip(s.temperatures_K, first_msd, msd, strict=True)}
    return row


def committee_spread(first_forces, members: list[dict], first: dict) -> dict:
    """Across all models (the first and every member): the RMS over atoms and components
    of the standard deviation of their forces on the same snapshots (meV/Å; the classic
    committee uncertainty) and relative to the first model's RMS force, and the spread
    (max − min, THz) of their lowest frequencies."""
    n = min([len(first_forces.forces_eV_A)] + [len(m["forces"].forces_eV_A) for m in members])
    stack = np.array([first_forces.forces_eV_A[:n]]
                     + [m["forces"].forces_eV_A[:n] for m in members])
    std = float(np.sqrt(np.mean(stack.std(axis=0) ** 2))) * 1000
    lows = [first.get("lowest_frequency_THz")] + [m["verdict"]["lowest_frequency_THz"]
                                                  for m in members]
    lows = [x for x in lows if x is not None]
    return {"committee_size": len(members) + 1, "committee_force_std_meV_A": std,
            "committee_force_std_relative": std / max(
                float(np.sqrt(np.mean(stack[0] ** 2))) * 1000, 1e-12),
            "committee_lowest_frequency_spread_THz": float(max(lows) - min(lows))
            if lows else None}


def recheck(displace_result: dict, first: dict, s: StabilityRecheckSettings,
            load_calculator: Callable, basis_cache: Path | None = None,
            log: Callable[[str], None] = print, first_forces=None,
            first_fc2: np.ndarray | None = None, start: Atoms | None = None,
            load_further: Callable[[str], object] | None = None) -> dict:
    """The second model's verdict beside the first (``first``: the stability result).
    ``load_calculator()`` returns the second model's ASE calculator; it is called only when
    the snapshots determine fc2.

    With ``s.own_relaxation`` the second model's verdict is taken at its own relaxed cell
    (:func:`own_cell`, relaxed from ``start``: the structure the first model relaxed), as
    a campaign with that model alone would get it; the same patterns at
    the first model's cell give the shared-cell verdict (``shared_cell_*``) and the force
    disagreement on exactly the configurations the first model saw. Without it, the
    shared cell gives both. With ``first_forces`` (the first model's ForceSet on the same
    snapshots) the force disagreement of the two models is added (and ``extrapolating``:
    relative disagreement above ``s.extrapolating_above``, where the first model's DFT
    force error is expected to be a few times larger still, docs/relax.md); with
    ``first_fc2`` (eV/Å²) the ratio of the two models' harmonic mobile-ion MSDs per
    temperature (:func:`mobile_msd_A2`) when both call the material stable.

    ``s.further_models`` (same backend; ``load_further(model)`` returns each calculator)
    are judged the same way (``further_models`` in the result) and widen the committee:
    ``model_dependent_verdict`` when any model's verdict differs from the first's,
    ``extrapolating`` when any pair with the first disagrees above the threshold, and the
    spread over all models (:func:`committee_spread`). Returns the stage's result data
    (``status``, ``reason``, verdicts, lowest frequencies in THz, force evaluations)."""
    from .displace import free_parameters, symfc_basis
    from .fit_ifc import independent_equations
    from .forces import reference_needed
    from .formats import atoms_from_dict
    from .harmonic import phonopy_from_displace

    sc = atoms_from_dict(displace_result["supercell"])
    listed = np.asarray(displace_result["displacements_A"])[:displace_result["n_snapshots"]]
    basis = symfc_basis(sc, cache=basis_cache)  # every member's shared-cell fit uses it
    n_free = free_parameters(basis)[2]
    n_eq = independent_equations(listed)
    if n_eq < n_free:
        return {"status": "failed", "reason": (
            f"{n_eq} force equations for {n_free} free fc2 parameters: too few for a "
            "least-squares re-check; raise phonons.safety_factor")}
    reference = reference_needed(displace_result)
    name = f"{s.backend}:{s.model}" + (f" ({s.modal})" if s.modal else "")
    specs = [(name, load_calculator)] + [
        (f"{s.backend}:{m}", lambda m=m: load_further(m)) for m in s.further_models]
    members = []
    for who, load in specs:
        if who != name:
            log(f"committee member {who}")
        members.append(_judge(who, load(), displace_result, sc, listed, reference, s,
                              basis, log, start))
    second = members[0]
    fs, shared, st = second["forces"], second["shared"], second["verdict"]
    out: dict = {"second_model": name, "own_relaxation": s.own_relaxation,
                 "shared_cell_stable": shared["stable"],
                 "shared_cell_lowest_frequency_THz": shared["lowest_frequency_THz"],
                 **second["info"]}
    n_eval = sum(m["n_eval"] for m in members)
    first_stable = first.get("stable") if first["status"] in ("ok", "failed") else None
    verdict = "stable" if st["stable"] else "unstable"
    agree = _agrees(first_stable, second)
    where = " at its own relaxed cell" if s.own_relaxation else ""
    reason = f"{name}{where}: {verdict}, lowest {st['lowest_frequency_THz']:.2f} THz" + (
        "" if agree is None else
        ("; agrees with the first model" if agree else
         f"; the first model says {'stable' if first_stable else 'unstable'} "
         f"({first['lowest_frequency_THz']:.2f} THz): the verdict depends on the model"))
    if "own_relaxation_failed" in second["info"]:
        reason += f" (at the first model's cell: {second['info']['own_relaxation_failed']})"
    elif s.own_relaxation and shared["stable"] != st["stable"]:
        reason += (f" (at the first model's cell {shared['lowest_frequency_THz']:.2f} THz, "
                   f"{'stable' if shared['stable'] else 'unstable'}: the verdict depends on "
                   "the cell)")
    symbols = np.array(sc.get_chemical_symbols())
    same_snapshots = first_forces is not None and len(first_forces.forces_eV_A) > 0 \
        and np.allclose(
        first_forces.displacements_A[:len(fs.displacements_A)],
        fs.displacements_A[:len(first_forces.displacements_A)], atol=1e-8)
    msd1 = []
    if first_fc2 is not None and first_stable:
        msd1 = mobile_msd_A2(phonopy_from_displace(displace_result, first_fc2), s)
    rows = [_member_row(m, first_stable, first_forces if same_snapshots else None, symbols,
                        msd1, s) for m in members]
    row2 = rows[0]
    if same_snapshots:
        out.update({k: v for k, v in row2.items() if k.startswith("force_disagreement")})
        rel = out["force_disagreement_relative"]
        out["extrapolating"] = bool(rel > s.extrapolating_above)
        reason += (f"; forces differ by {out['force_disagreement_rms_meV_A']:.2g} "
                   f"meV/Å RMS ({100 * rel:.0f} % of the forces)")
    if "msd_mobile_ratio_by_temperature_K" in row2:
        out["msd_mobile_ratio_by_temperature_K"] = row2["msd_mobile_ratio_by_temperature_K"]
        msd2 = row2["msd_mobile_A2"]
        hot = max(range(len(msd1)), key=lambda i: s.temperatures_K[i])
        reason += (f"; {s.mobile_ion} MSD {msd2[hot]:.3f} vs {msd1[hot]:.3f} Å² at "
                   f"{s.temperatures_K[hot]:g} K")
    dependent = None if agree is None else not agree
    if len(members) > 1:
        further = [{k: v for k, v in r.items() if k != "msd_mobile_A2"} for r in rows[1:]]
        out["further_models"] = further
        if same_snapshots:
            out.update(committee_spread(first_forces, members, first))
            worst = max(r["force_disagreement_relative"] for r in further)
            out["extrapolating"] = bool(out["extrapolating"]
                                        or worst > s.extrapolating_above)
        differ = [r["model"] for r in further if r["verdict_differs"]]
        if dependent is not None:
            dependent = dependent or bool(differ)
        reason += (f"; committee of {len(members) + 1}"
                   + (f": {', '.join(differ)} also differ" if differ else "")
                   + (f", lowest frequencies spread over "
                      f"{out['committee_lowest_frequency_spread_THz']:.2f} THz"
                      if out.get("committee_lowest_frequency_spread_THz") is not None
                      else ""))
    if out.get("extrapolating"):
        reason += (f"; above stability_recheck.extrapolating_above = "
                   f"{s.extrapolating_above:g}: the models extrapolate here")
    log(reason)
    return {**out, "stable": st["stable"],
            "model_dependent_verdict": dependent,
            "lowest_frequency_THz": st["lowest_frequency_THz"],
            "n_imaginary_modes": st["n_imaginary_modes"],
            "acoustic_cutoff_THz": st["acoustic_cutoff_THz"],
            "first_model_stable": first_stable,
            "first_model_lowest_frequency_THz": first.get("lowest_frequency_THz"),
            "verdicts_agree": agree,
            "n_force_evaluations": n_eval,
            "status": "ok", "reason": reason}
