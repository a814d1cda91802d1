"""DFT validation of the MLP phonons (seed 000 §2.2 and Fig. S8; issue 14).

Both force sets were computed on the same displaced supercells (the first ``n`` snapshots
of ``displace.json``), so the comparison isolates the potential:

- force error: RMSE of the MLP forces against the DFT forces over every atom and Cartesian
  component of every snapshot (meV/Å; seed 000 §2.2 reports this number), overall and on
  the mobile ion, and relative to the RMS DFT force;
- force constants: both sets through the *same* symfc least-squares fit (so differences
  are the model's, not the fit's), RMSE of the MLP fc2 against the DFT fc2 (eV/Å²);
- stability: the verdict of :func:`phonion.stability.assess_stability` for each, and
  whether they agree;
- mobile-ion MSD (seed 000 eq. 4; per Cartesian component, averaged over the mobile ions,
  as ``phonon_descriptors`` reports it) on the same mesh at each temperature, and the
  ratio MLP/DFT (Fig. S8 compares these), for stable pairs only;
- band RMSE (THz) along the same seekpath path, and both paths for the overlay figure.
"""

from __future__ import annotations

import numpy as np

from .errors import PhonionError
from .formats import ForceSet
from .settings import DftValidationSettings, StabilitySettings


class ValidationError(PhonionError):
    """The two force sets cannot be compared (different snapshots, too few equations)."""


def force_errors(mlp: ForceSet, dft: ForceSet, mobile: np.ndarray) -> dict:
    """RMSE (meV/Å) of the total MLP forces against the total DFT forces (residual forces of
    the undisplaced supercell added back), overall and on the ``mobile`` atoms; the RMS DFT
    force (meV/Å) sets the scale."""
    f_mlp = mlp.forces_eV_A + mlp.residual_forces_eV_A
    f_dft = dft.forces_eV_A + dft.residual_forces_eV_A
    diff = f_mlp - f_dft
    return {
        "force_rmse_meV_A": 1e3 * float(np.sqrt(np.mean(diff ** 2))),
        "force_rmse_mobile_meV_A": 1e3 * float(np.sqrt(np.mean(diff[:, mobile] ** 2))),
        "force_mae_meV_A": 1e3 * float(np.mean(np.abs(diff))),
        "dft_force_rms_meV_A": 1e3 * float(np.sqrt(np.mean(f_dft ** 2))),
    }


def fc3_errors(supercell, displacements_A: np.ndarray, f_mlp: np.ndarray, f_dft: np.ndarray,
               cutoff_A: float, symprec: float = 1e-3) -> dict:
    """RMSE of the MLP's third-order force constants against DFT's (eV/Å³, and relative to
    the RMS DFT fc3; seed 000 §2.2 compares both orders), both fitted by the same symfc least
    squares (fc2 + fc3 together, fc3 clusters within ``cutoff_A``) on the same snapshots.
    When the snapshots hold fewer independent equations than free parameters, the values
    are None and ``fc3_reason`` says so (no fit of an underdetermined system)."""
    from symfc import Symfc

    from .displace import count_free_parameters
    from .harmonic import to_phonopy

    n_free3 = _fc3_parameters(supercell, cutoff_A, symprec)
    need = count_free_parameters(supercell, (2,), None, symprec)[2] + n_free3
    # every snapshot gives 3N equations for fc2 + fc3 together (a ± pair separates them)
    have = 3 * len(supercell) * len(displacements_A)
    if have < need:
        return {"fc3_rmse_eV_A3": None, "fc3_relative_rmse": None,
                "fc3_reason": f"{have} force equations for {need} free fc2 + fc3 parameters: "
                              "too few for the fc3 comparison (phonons.safety_factor)"}
    fc3 = {}
    for name, f in (("mlp", f_mlp), ("dft", f_dft)):
        sym = Symfc(to_phonopy(supercell), use_mkl=False, log_level=0,
                    cutoff={3: cutoff_A}, symprec=symprec)
        sym.displacements = np.asarray(displacements_A, dtype="double")
        sym.forces = np.asarray(f, dtype="double")
        sym.run(orders=[2, 3], is_compact_fc=True)
        fc3[name] = np.asarray(sym.force_constants[3])
    rmse = float(np.sqrt(np.mean((fc3["mlp"] - fc3["dft"]) ** 2)))
    scale = float(np.sqrt(np.mean(fc3["dft"] ** 2)))
    return {"fc3_rmse_eV_A3": rmse, "fc3_relative_rmse": rmse / scale if scale > 0 else None,
            "fc3_n_parameters": n_free3, "fc3_reason": ""}


def _fc3_parameters(supercell, cutoff_A: float, symprec: float) -> int:
    from symfc import Symfc

    from .harmonic import to_phonopy

    sym = Symfc(to_phonopy(supercell), use_mkl=False, log_level=0, cutoff={3: cutoff_A},
                symprec=symprec)
    sym.compute_basis_set(orders=[3])
    return int(sym.basis_set[3].basis_set.shape[1])


def compare(disp: dict, mlp: ForceSet, dft: ForceSet,
            s: DftValidationSettings | None = None) -> tuple[dict, dict]:
    """Scalars (JSON) and arrays (both band paths) of the MLP-vs-DFT comparison of one
    material. ``disp`` is the displace stage's result; ``s`` defaults to the config
    defaults."""
    from .displace import free_parameters, symfc_basis
    from .fit_ifc import fit_symfc, independent_equations
    from .harmonic import mesh_numbers, phonopy_from_displace
    from .phonon_descriptors import mesh_msd
    from .stability import assess_stability

    s = s or DftValidationSettings()
    n = min(len(mlp.displacements_A), len(dft.displacements_A))
    if n == 0:
        raise ValidationError("no displaced snapshot in one of the force sets")
    u = np.asarray(dft.displacements_A[:n])
    if not np.allclose(mlp.displacements_A[:n], u, atol=1e-8):
        raise ValidationError("the MLP and DFT force sets were computed on different "
                              "displacements: rerun dft_forces on this displace.json")
    mlp = ForceSet(mlp.supercell, u, mlp.forces_eV_A[:n], mlp.residual_forces_eV_A,
                   mlp.energies_eV[:n] if mlp.energies_eV is not None else None)
    dft = ForceSet(dft.supercell, u, dft.forces_eV_A[:n], dft.residual_forces_eV_A,
                   dft.energies_eV[:n] if dft.energies_eV is not None else None)
    symbols = np.array(mlp.supercell.get_chemical_symbols())
    out: dict = {"n_snapshots": n, "n_atoms_supercell": len(symbols),
                 **force_errors(mlp, dft, symbols == s.mobile_ion)}

    basis = symfc_basis(mlp.supercell, (2,), s.fc2_cutoff_A)  # both fits reuse it
    n_free = free_parameters(basis)[2]
    if independent_equations(u) < n_free:
        raise ValidationError(f"{independent_equations(u)} force equations for {n_free} free "
                              "fc2 parameters: too few for the least-squares comparison; "
                              "raise phonons.safety_factor")
    phs, verdicts, paths = {}, {}, {}
    st_settings = StabilitySettings(s.tolerance_THz, s.mesh_length_A, s.band_points)
    for name, fs in (("mlp", mlp), ("dft", dft)):
        ph = phonopy_from_displace(disp)
        ph.force_constants = fit_symfc(ph, u, fs.forces_eV_A, s.fc2_cutoff_A, basis=basis)
        phs[name] = ph
        verdicts[name], paths[name] = assess_stability(ph, st_settings)
    fc_m, fc_d = phs["mlp"].force_constants, phs["dft"].force_constants
    out["fc2_rmse_eV_A2"] = float(np.sqrt(np.mean((fc_m - fc_d) ** 2)))
    out["fc2_relative_rmse"] = out["fc2_rmse_eV_A2"] / float(np.sqrt(np.mean(fc_d ** 2)))
    for name in ("mlp", "dft"):
        v = verdicts[name]
        out[f"{name}_stable"] = v["stable"]
        out[f"{name}_lowest_frequency_THz"] = v["lowest_frequency_THz"]
        out[f"{name}_acoustic_cutoff_THz"] = v["acoustic_cutoff_THz"]
    out["stability_agrees"] = verdicts["mlp"]["stable"] == verdicts["dft"]["stable"]
    # issue 26: the DFT-checked verdict, for the table, the summary and the status line
    out["mlp_verdict_check"] = "confirmed" if out["stability_agrees"] else "contradicted"
    check = (f"MLP verdict ({'stable' if verdicts['mlp']['stable'] else 'unstable'}, "
             f"{verdicts['mlp']['lowest_frequency_THz']:.2f} THz) {out['mlp_verdict_check']} "
             f"by DFT ({verdicts['dft']['lowest_frequency_THz']:.2f} THz)")
    if s.fc3:
        out.update(fc3_errors(mlp.supercell, u, mlp.forces_eV_A, dft.forces_eV_A,
                              s.fc3_cutoff_A))
    f_m = paths["mlp"]["path/frequencies_THz"]
    f_d = paths["dft"]["path/frequencies_THz"]
    out["band_rmse_THz"] = float(np.sqrt(np.mean((f_m - f_d) ** 2)))
    out["tolerance_THz"] = s.tolerance_THz

    mobile = np.array(phs["dft"].primitive.symbols) == s.mobile_ion
    if verdicts["mlp"]["stable"] and verdicts["dft"]["stable"]:
        mesh = mesh_numbers(phs["dft"], s.mesh_length_A)
        temps = list(s.temperatures_K)
        msd = {name: mesh_msd(phs[name], mesh, temps)[:, mobile].mean(axis=(1, 2))
               for name in phs}
        out["msd_mesh"] = mesh
        out["by_temperature_K"] = {
            f"{T:g}": {"msd_mobile_mlp_A2": float(msd["mlp"][k]),
                       "msd_mobile_dft_A2": float(msd["dft"][k]),
                       "msd_ratio_mlp_dft": float(msd["mlp"][k] / msd["dft"][k])}
            for k, T in enumerate(temps)}
        out["reason"] = check
    else:
        out["by_temperature_K"] = {}
        out["reason"] = (check + "; no MSD comparison: "
                         + ", ".join(f"{k.upper()} unstable" for k in ("mlp", "dft")
                                     if not verdicts[k]["stable"]))
    arrays = {**{f"mlp/{k}": v for k, v in paths["mlp"].items()},
              **{f"dft/{k}": v for k, v in paths["dft"].items()}}
    return out, arrays

