"""fd_check: the material's phonons by an independent route, phonopy finite displacements
with the same model on the same supercell, against the fitted ones (issue 23).

This is the check a careful user runs by hand: phonopy displaces one atom at a time by
``amplitude_A`` along the directions its site symmetry needs (± where symmetry does not
give the inverse), the model gives the forces, phonopy builds fc2 from them and imposes
the translational sum rule and index symmetry. Both fc2 then go through the same stability
screen (without the second look) and the same converged-mesh mobile-ion MSD (seed 000
eq. 5); :func:`compare` reports both verdicts, lowest frequencies, MSDs and the band
RMSE along the seekpath path.

Verbs: :func:`finite_displacement_phonopy` (the FD fc2) and :func:`compare`.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from ase import Atoms

from .settings import FdCheckSettings, PhononDescriptorsSettings, StabilitySettings


def finite_displacement_phonopy(displace_result: dict, calculator, amplitude_A: float = 0.01,
                                log=sys.stdout):
    """Phonopy object of the ``displace`` result's primitive cell and supercell with fc2 from
    finite displacements of ``amplitude_A`` (Å) evaluated with ``calculator``; the forces of
    the undisplaced supercell are subtracted unless the site symmetry forbids them. Returns
    the phonopy object and the number of force evaluations."""
    from .harmonic import phonopy_from_displace

    ph = phonopy_from_displace(displace_result, symmetry=True)  # FD needs the site symmetry
    ph.generate_displacements(distance=amplitude_A, is_plusminus="auto")
    sc = ph.supercell
    atoms = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
    atoms.calc = calculator
    reference = not displace_result.get("residual_forces_zero_by_symmetry", False)
    f0 = atoms.get_forces().copy() if reference else np.zeros((len(atoms), 3))
    base = atoms.positions.copy()
    forces = []
    t0 = time.perf_counter()
    supercells = ph.supercells_with_displacements
    for k, disp in enumerate(supercells, start=1):
        atoms.positions = base + (disp.positions - sc.positions)
        forces.append(atoms.get_forces() - f0)
        if log and (k % 10 == 0 or k == len(supercells)):
            print(f"[fd_check] displacement {k}/{len(supercells)} "
                  f"({time.perf_counter() - t0:.1f} s)", file=log, flush=True)
    ph.forces = np.asarray(forces)
    ph.produce_force_constants()
    ph.symmetrize_force_constants()
    return ph, len(supercells) + int(reference)


def _msd(ph, s: PhononDescriptorsSettings) -> tuple[list[float] | None, str]:
    """Converged-mesh mean mobile-ion MSD (Å²) per temperature, or None and why."""
    from .phonon_descriptors import MeshNotConverged, converge_mesh, extrapolate_msd

    mobile = np.array(ph.primitive.symbols) == s.mobile_ion
    try:
        meshes, history, tensors = converge_mesh(
            ph, list(s.temperatures_K), mobile, s.mesh_start_length_A,
            max_length_A=s.mesh_max_length_A, tolerance=s.msd_tolerance)
    except MeshNotConverged as exc:
        return None, str(exc)
    x = extrapolate_msd(tensors[-2], tensors[-1], history[-2]["mesh"], history[-1]["mesh"])
    return [float(t[mobile].mean()) for t in x], ""


def compare(fitted, reference, s: FdCheckSettings = FdCheckSettings()) -> dict:
    """The fitted (``fitted``) and finite-displacement (``reference``) phonopy objects of the
    same supercell side by side: stability verdicts and lowest frequencies (THz), band RMSE
    (THz), converged mobile-ion MSD (Å²) at ``s.temperatures_K`` and its relative error,
    and ``agree`` (same verdict and, where both are stable, MSD within
    ``s.msd_tolerance_relative``)."""
    from .harmonic import band_path
    from .stability import assess_stability

    st_s = StabilitySettings(tolerance_THz=s.tolerance_THz, mesh_length_A=s.mesh_length_A,
                             band_points=s.band_points)
    ms = PhononDescriptorsSettings(mobile_ion=s.mobile_ion, temperatures_K=s.temperatures_K)
    out: dict = {}
    for name, ph in (("fit", fitted), ("fd", reference)):
        st, _ = assess_stability(ph, st_s)
        out[f"{name}_stable"] = st["stable"]
        out[f"{name}_lowest_frequency_THz"] = st["lowest_frequency_THz"]
        out[f"{name}_n_imaginary_modes"] = st["n_imaginary_modes"]
        msd, why = _msd(ph, ms) if st["stable"] else (None, "unstable")
        out[f"{name}_msd_mobile_mean_A2"] = msd
        if why and why != "unstable":
            out[f"{name}_msd_note"] = why
    fb = band_path(fitted, s.band_points).modes.frequencies_THz
    rb = band_path(reference, s.band_points).modes.frequencies_THz
    out["band_rmse_THz"] = float(np.sqrt(np.mean((fb - rb) ** 2)))
    out["temperatures_K"] = list(s.temperatures_K)
    out["verdicts_agree"] = out["fit_stable"] == out["fd_stable"]
    err = None
    if out["fit_msd_mobile_mean_A2"] and out["fd_msd_mobile_mean_A2"]:
        err = [a / b - 1 for a, b in zip(out["fit_msd_mobile_mean_A2"],
                                         out["fd_msd_mobile_mean_A2"], strict=True)]
    out["msd_relative_error"] = err
    out["agree"] = bool(out["verdicts_agree"] and (
        err is None or max(abs(e) for e in err) <= s.msd_tolerance_relative))
    return out


def summary_line(c: dict) -> str:
    """One line for the status and the log."""
    def verdict(stable: bool) -> str:
        return "stable" if stable else "unstable"

    line = (f"fit {verdict(c['fit_stable'])} ({c['fit_lowest_frequency_THz']:.2f} THz), "
            f"finite displacements {verdict(c['fd_stable'])} "
            f"({c['fd_lowest_frequency_THz']:.2f} THz), band RMSE {c['band_rmse_THz']:.3f} THz")
    if c["msd_relative_error"]:
        line += ", mobile-ion MSD " + ", ".join(
            f"{e:+.1%} at {t:g} K" for e, t in zip(c["msd_relative_error"], c["temperatures_K"],
                                                   strict=True))
    return line
