"""Commands of the phonon stages: displacements, forces, force-constant fit, stability
screen (and its re-check with a second model and by finite displacements), descriptors."""

from __future__ import annotations

import argparse

from .. import formats
from ..runner import Context, run_stage
from .common import basis_cache, load_calculator, load_member, settings_of


def displace(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from ..displace import displace as run_displace
        from ..symmetry import forces_vanish_by_symmetry, symmetrize

        relaxed = formats.atoms_from_dict(ctx.upstream["relax"]["structure"])
        # exact symmetry for the symmetry-adapted fits (the relaxation leaves ~1e-7 Å)
        prim, shift = symmetrize(relaxed, ctx.settings.symprec)
        d = run_displace(prim, ctx.settings, basis_cache(a.out))
        ctx.log(f"symmetrized the relaxed cell (largest shift {shift:.1e} Å); supercell "
                f"{d.choice.supercell_matrix.tolist()} ({len(d.supercell)} atoms), "
                f"{len(d.displacements_A)} snapshots of {d.amplitude_A} Å for {d.n_free} free "
                "parameters")
        return {**d.summary(), "symmetrize_max_shift_A": shift,
                # the forces stage then skips the undisplaced supercell
                "residual_forces_zero_by_symmetry": forces_vanish_by_symmetry(
                    prim, ctx.settings.symprec),
                "primitive": formats.atoms_to_dict(prim),
                "supercell": formats.atoms_to_dict(d.supercell),
                "displacements_A": d.displacements_A}

    return run_stage("displace", body, a.out, {"relax": a.relax}, settings_of(a))


def forces(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        import numpy as np

        from ..forces import (
            compute_forces,
            compute_forces_adaptive,
            msd_criterion,
            reference_needed,
        )

        s, disp = ctx.settings, ctx.upstream["displace"]
        sc = formats.atoms_from_dict(disp["supercell"])
        listed = np.asarray(disp["displacements_A"])
        loaded = load_calculator(ctx, a.device)
        reference = reference_needed(disp)
        out: dict = {}
        if s.adaptive:
            per = 2 if disp["plus_minus"] else 1
            fs, out["adaptive"] = compute_forces_adaptive(
                sc, listed, loaded.calculator, disp["n_snapshots"], per * s.adaptive_batch,
                msd_criterion(disp, s, basis_cache(a.displace)), s.adaptive_tolerance,
                reference=reference)
        else:
            fs = compute_forces(sc, listed[:disp["n_snapshots"]], loaded.calculator,
                                reference=reference)
        fs.meta = {"source": "mlp", "model": ctx.model}
        formats.write_forceset(ctx.outputs["forceset"], fs)
        n_eval = len(fs.displacements_A) + int(reference)
        residual = float(np.abs(fs.residual_forces_eV_A).max())
        ctx.log(f"{n_eval} force evaluations of {len(sc)} atoms; " + (
            f"max residual force {residual:.2e} eV/Å" if reference
            else "residual forces zero by site symmetry (undisplaced cell not evaluated)"))
        return {"n_force_evaluations": n_eval, "n_snapshots": len(fs.displacements_A),
                "residual_forces": "evaluated" if reference else "zero by symmetry",
                "max_residual_force_eV_A": residual,
                "max_force_eV_A": float(np.abs(fs.forces_eV_A).max()), **out}

    return run_stage("forces", body, a.out, {"displace": a.displace}, settings_of(a),
                     {"forceset": a.forceset})


def fit_ifc(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from ..fit_ifc import alpha_warning, fit_force_constants
        from ..harmonic import phonopy_from_displace

        fs = formats.read_forceset(a.forceset)
        ph = phonopy_from_displace(ctx.upstream["displace"])
        fit = fit_force_constants(ph, fs.displacements_A, fs.forces_eV_A, ctx.settings,
                                  python=a.pheasy_python or None,
                                  basis_cache=basis_cache(a.displace))
        formats.write_fc2(ctx.outputs["fc2"], fit.fc2)
        if fit.fc3 is not None:
            formats.write_fc3(ctx.outputs["fc3"], fit.fc3)
        d = fit.diagnostics
        ctx.log(f"{d['method']}: RMSE {d['rmse_eV_A']:.2e} eV/Å"
                + (f", alpha {d['alpha']:.2e}, CV RMSE {d['cv_rmse_eV_A']:.2e} eV/Å"
                   if "alpha" in d else "")
                + f", {d['n_free_parameters']:.0f} free parameters, {d['wall_time_s']:.1f} s")
        return {"reason": alpha_warning(d), **d}

    return run_stage("fit_ifc", body, a.out, {"displace": a.displace, "forces": a.forces},
                     settings_of(a), {"fc2": a.fc2, "fc3": a.fc3})


def stability(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from ..harmonic import phonopy_from_displace
        from ..plots import plot_bands
        from ..stability import assess_stability

        ph = phonopy_from_displace(ctx.upstream["displace"], formats.read_fc2(a.fc2))
        # the model is loaded only for the second look at an unstable verdict
        st, arrays = assess_stability(ph, ctx.settings,
                                      lambda: load_calculator(ctx, a.device).calculator)
        plot_bands(arrays, st, f"{ctx.mid}: phonon bands",
                   ctx.outputs["figures"] / "bands")
        ctx.log(f"{'stable' if st['stable'] else st['reason']} (lowest "
                f"{st['lowest_frequency_THz']:.3f} THz)")
        return {**st, "status": "ok" if st["stable"] else "failed"}

    return run_stage("stability", body, a.out, {"displace": a.displace, "fit_ifc": a.fit_ifc},
                     settings_of(a), {"figures": a.figures})


def stability_recheck(a: argparse.Namespace) -> int:
    """The stability screen with a second MLP (:mod:`phonion.stability_recheck`)."""

    def body(ctx: Context) -> dict:
        from ..stability_recheck import recheck

        first = formats.read_forceset(a.forceset) if a.forceset else None
        # the second model relaxes the structure the first one relaxed
        start = (formats.atoms_from_dict(formats.read_result(a.intake)["structure"])
                 if a.intake else None)
        # the first model's fc2 for the MSD ratio: only a stable verdict has an MSD
        fc2 = (formats.read_fc2(a.fc2)
               if a.fc2 and ctx.upstream["stability"].get("stable") else None)
        return recheck(ctx.upstream["displace"], ctx.upstream["stability"], ctx.settings,
                       lambda: load_calculator(ctx, a.device).calculator,
                       basis_cache(a.displace), log=ctx.log, first_forces=first,
                       first_fc2=fc2, start=start,
                       load_further=lambda spec: load_member(ctx.settings, spec, a.device))

    return run_stage("stability_recheck", body, a.out,
                     {"displace": a.displace, "stability": a.stability}, settings_of(a),
                     gate="any")


def fd_check(a: argparse.Namespace) -> int:
    """phonopy finite displacements with the same model on the same supercell against the
    fitted fc2 (:mod:`phonion.fd_check`); ``failed`` when they disagree."""

    def body(ctx: Context) -> dict:
        from ..fd_check import compare, finite_displacement_phonopy, summary_line
        from ..harmonic import phonopy_from_displace

        s, disp = ctx.settings, ctx.upstream["displace"]
        loaded = load_calculator(ctx, "cpu")
        ctx.log(f"finite displacements of {s.amplitude_A} Å with {ctx.model['backend']} "
                f"'{ctx.model['name']}'")
        fd, n_fd = finite_displacement_phonopy(disp, loaded.calculator, s.amplitude_A)
        formats.write_fc2(ctx.outputs["fc2"], fd.force_constants)
        c = compare(phonopy_from_displace(disp, formats.read_fc2(a.fc2)), fd, s)
        line = summary_line(c)
        ctx.log(line)
        return {**c, "fd_force_evaluations": n_fd,
                "status": "ok" if c["agree"] else "failed",
                "reason": "" if c["agree"] else f"finite displacements disagree: {line}"}

    return run_stage("fd_check", body, a.out,
                     {"displace": a.displace, "fit_ifc": a.fit_ifc}, settings_of(a),
                     {"fc2": a.fd_fc2})


def phonon_descriptors(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from ..harmonic import phonopy_from_displace
        from ..phonon_descriptors import phonon_descriptors as describe
        from ..plots import plot_coupling_pdos, plot_msd_modes

        s, disp = ctx.settings, ctx.upstream["displace"]
        ph = phonopy_from_displace(disp, formats.read_fc2(a.fc2))
        scalars, arrays = describe(ph, s)
        formats.write_arrays(ctx.outputs["arrays"], arrays)
        t_hi = max(s.temperatures_K)
        hot = scalars["by_temperature_K"][f"{t_hi:g}"]
        formula = formats.atoms_from_dict(disp["primitive"]).get_chemical_formula(mode="metal")
        title = f"{ctx.mid} ({formula})"
        figures = ctx.outputs["figures"]
        plot_msd_modes(arrays, t_hi, f"{title}: {s.mobile_ion} MSD by mode, {t_hi:g} K",
                       figures / "msd_modes")
        plot_coupling_pdos(arrays, scalars, f"{title}: {s.mobile_ion}–host coupling and PDOS",
                           figures / "coupling_pdos")
        ctx.log(f"{s.mobile_ion} MSD {hot['msd_mobile_mean_A2']:.4f} Å² at {t_hi:g} K (mesh "
                f"{scalars['mesh']}), acoustic cutoff {scalars['acoustic_cutoff_THz']:.2f} THz, "
                f"{s.mobile_ion} PDOS centre {scalars['pdos_mobile_centre_THz']:.2f} THz")
        return {**scalars, "formula": formula}

    return run_stage("phonon_descriptors", body, a.out,
                     {"displace": a.displace, "stability": a.stability}, settings_of(a),
                     {"arrays": a.arrays, "figures": a.figures})
