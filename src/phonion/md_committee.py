"""The committee on MD frames (issue 26): the second model of ``stability_recheck`` on
frames spread over an MD run of the first model, against the forces the MD computed there.

The displaced snapshots of the phonon fit sit 0.01 Å from the relaxed cell; an MD run at
800 K or 1000 K visits configurations far from it (large amplitudes, hops, transient
bonds), where a potential leaves its training data first. The disagreement on those frames
says how far to trust the MD the diffusion coefficients come from; a rise over the
disagreement on the snapshots says the MD has left the region where the models agree."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from ase import Atoms

from .settings import MdCommitteeSettings
from .stability_recheck import force_disagreement


def committee_on_frames(frames: dict, calculator, s: MdCommitteeSettings,
                        log: Callable[[str], None] = print,
                        snapshot_relative: float | None = None,
                        name: str | None = None) -> dict:
    """Forces of ``calculator`` (the second model) on ``frames``
    (:func:`phonion.formats.read_frames_with_forces`: positions Å, the first model's forces
    eV/Å, cell, numbers) and the disagreement of the two models (:func:`force_disagreement`:
    RMS and max, meV/Å, per species, and relative to the first model's RMS force);
    ``extrapolating`` above ``s.extrapolating_above`` (the threshold of the snapshots,
    calibrated in docs/relax.md). ``snapshot_relative``: the relative disagreement of the
    same two models on the phonon snapshots (stability_recheck), for the ratio."""
    atoms = Atoms(numbers=frames["numbers"], cell=frames["cell_A"], pbc=True)
    atoms.calc = calculator
    second = []
    for k, positions in enumerate(frames["positions_A"]):
        atoms.positions = positions
        atoms.wrap()  # MD keeps unwrapped positions; forces are periodic
        second.append(atoms.get_forces().copy())
        if (k + 1) % max(1, len(frames["positions_A"]) // 5) == 0:
            log(f"frame {k + 1}/{len(frames['positions_A'])}")
    out = force_disagreement(frames["forces_eV_A"], np.array(second),
                             np.array(atoms.get_chemical_symbols()))
    rel = out["force_disagreement_relative"]
    out["extrapolating"] = bool(rel > s.extrapolating_above)
    T = frames["target_temperature_K"]
    name = name or f"{s.backend}:{s.model}"
    reason = (f"{name} on {len(second)} of {frames['n_frames']} frames at "
              f"{T:g} K: forces differ by {out['force_disagreement_rms_meV_A']:.3g} meV/Å "
              f"RMS ({100 * rel:.0f} % of the forces)")
    if snapshot_relative:
        out["ratio_to_snapshots"] = rel / snapshot_relative
        reason += f", {out['ratio_to_snapshots']:.1f}× their disagreement on the phonon snapshots"
    if out["extrapolating"]:
        reason += (f"; above stability_recheck.extrapolating_above = "
                   f"{s.extrapolating_above:g}: the models extrapolate in this MD")
    log(reason)
    return {**out, "temperature_K": T, "second_model": name,
            "frames": [int(i) for i in frames["frames"]], "status": "ok", "reason": reason}


def committee_on_frames_all(frames: dict, members: list[tuple[str, object]],
                            s: MdCommitteeSettings, log: Callable[[str], None] = print,
                            snapshot_relative: float | None = None) -> dict:
    """:func:`committee_on_frames` for the second model (the first of ``members``: (name,
    calculator) pairs) and every further one (``further_models`` in the result, each
    against the first model's forces); ``extrapolating`` when any of them is."""
    out = committee_on_frames(frames, members[0][1], s, log, snapshot_relative,
                              members[0][0])
    rows = []
    for name, calc in members[1:]:
        res = committee_on_frames(frames, calc, s, log, name=name)
        rows.append({"model": name, **{k: v for k, v in res.items()
                                       if k.startswith("force_disagreement")
                                       or k == "extrapolating"}})
    if rows:
        out["further_models"] = rows
        out["extrapolating"] = bool(out["extrapolating"] or any(r["extrapolating"]
                                                                for r in rows))
    return out
