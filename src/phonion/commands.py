"""Command line: ``python -m phonion <stage> ...``, one command per stage.

Every command reads its stage's settings (``--settings``, the JSON of
:mod:`phonion.settings`), names its upstream results and its outputs, and hands a body
to :func:`phonion.runner.run_stage`, which does the rest (skip, status, provenance,
atomic writes). The bodies only glue file formats to the stage verbs: the science lives
in the stage modules. Stage modules are imported inside the bodies, so a command that
only writes ``skipped`` starts in a fraction of a second and a backend environment
(``relax``, ``forces``, ``md``) needs only its MLP package, numpy, scipy, ASE, spglib and
h5py. The rules call these commands through the Python of the stage's environment (see
``environments`` in ``config/README.md``).

Two commands are not stages: ``model`` (is the configured MLP on this machine?) and
``fetch`` (structures from Materials Project / OQMD, run once by the user before a campaign;
:mod:`phonion.databases`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import formats
from .runner import Context, main_guard, run_stage
from .settings import SETTINGS


def _calculator(ctx: Context, device: str):
    """Load the stage's MLP on ``device`` and record it for provenance."""
    from .calculators import get_calculator

    s = ctx.settings
    loaded = get_calculator(s.backend, s.model, device, s.dtype, s.modal)
    ctx.model = loaded.description
    return loaded


def intake(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from .intake import read_structure, triage_and_describe
        from .provenance import file_sha256
        from .runner import run_guarded

        out = {"source": str(a.source), "source_sha256": file_sha256(a.source)}
        atoms = read_structure(a.source)
        # spglib and ASE see the structure in a child process: a crash there is a reason
        out.update(run_guarded(triage_and_describe, atoms, ctx.settings,
                               what=f"the structure of {Path(a.source).name}"))
        ctx.log(f"{out['primitive']['formula']} {out['primitive']['spacegroup']} accepted")
        return out

    return run_stage("intake", body, a.out, settings=_settings(a), mid=a.id)


def relax(a: argparse.Namespace) -> int:
    partial = Path(a.out).with_suffix(".partial.json")  # survives the job: a later run with
    # a larger relax.max_steps continues from the last structure instead of starting over

    def body(ctx: Context) -> dict:
        import hashlib

        from .calculators import check_elements
        from .relax import relax as run_relax
        from .relax import verdict

        s = ctx.settings
        atoms = formats.atoms_from_dict(ctx.upstream["intake"]["structure"])
        key = hashlib.sha256((json.dumps(ctx.upstream["intake"]["structure"], sort_keys=True)
                              + s.to_json().replace(f'"max_steps":{s.max_steps}', "")
                              ).encode()).hexdigest()
        start, before = None, 0
        if partial.exists():
            try:
                last = formats.read_json(partial)
                if last.get("key") == key and last["n_steps"] < s.max_steps:
                    start, before = formats.atoms_from_dict(last["structure"]), last["n_steps"]
            except (formats.DamagedFile, KeyError):
                pass
        loaded = _calculator(ctx, a.device)
        check_elements(loaded, atoms.get_chemical_symbols())
        ctx.log(f"{len(atoms)} atoms with {ctx.model['backend']} '{ctx.model['name']}' on "
                f"{ctx.model['device']}" + (f", continuing after {before} steps" if before
                                            else ""))
        result = run_relax(atoms, loaded.calculator, s, logfile="-", start=start,
                           steps_before=before)
        status, reason = verdict(result, s)
        if result.converged:
            partial.unlink(missing_ok=True)
        else:
            formats.write_json(partial, {"key": key, "n_steps": result.n_steps,
                                         "structure": formats.atoms_to_dict(result.atoms)})
        if status == "ok":
            formats.write_poscar(ctx.outputs["poscar"], result.atoms)
        ctx.log(f"{result.n_steps} steps, {result.spacegroup_initial[0]} -> "
                f"{result.spacegroup_final[0]}, dV = "
                f"{result.summary()['volume_change_percent']:+.2f} %")
        return {"status": status, "reason": reason, **result.summary(),
                "structure": formats.atoms_to_dict(result.atoms)}

    return run_stage("relax", body, a.out, {"intake": a.intake}, _settings(a),
                     {"poscar": a.poscar})


def dft_relax(a: argparse.Namespace) -> int:
    """The ``relax`` stage with a DFT engine (``relax.engine: vasp | cp2k``): the same result
    as the MLP relaxation, from one engine run in ``--workdir`` (reused when it finished for
    the same request)."""

    def body(ctx: Context) -> dict:
        from .dft.relax import run_relax
        from .relax import symmetry_verdict
        from .symmetry import is_supergroup, spacegroup, symmetry_operations

        s = ctx.settings
        atoms = formats.atoms_from_dict(ctx.upstream["intake"]["structure"])
        engine, protocol, run_protocol, kwargs = _dft_run_setup(s, a)
        relaxed, record = run_relax(engine, protocol, atoms, a.workdir, kwargs, log=ctx.log,
                                    run_protocol=run_protocol)
        sg0, sg1 = spacegroup(atoms, s.symprec), spacegroup(relaxed, s.symprec)
        superg = sg1[1] != sg0[1] and is_supergroup(
            relaxed, symmetry_operations(atoms, s.symprec), s.symprec)
        status, reason = symmetry_verdict(sg0, sg1, superg, s.on_symmetry_change)
        if status == "ok":
            formats.write_poscar(ctx.outputs["poscar"], relaxed)
        v0, v1 = atoms.get_volume(), relaxed.get_volume()
        energy = relaxed.info.get("energy_eV")
        ctx.log(f"{s.engine}: {sg0[0]} -> {sg1[0]}, dV = {100 * (v1 / v0 - 1):+.2f} %")
        # converged: run_relax returns only runs the engine's check passed, which fails a
        # relaxation that ended at its step limit (DFTRunFailed → failed, with the reason)
        return {"status": status, "reason": reason, "engine": s.engine, "converged": True,
                "energy_eV": energy,
                "energy_per_atom_eV": None if energy is None else energy / len(relaxed),
                "volume_initial_A3": v0, "volume_final_A3": v1,
                "volume_change_percent": 100 * (v1 / v0 - 1),
                "spacegroup_initial": sg0[0], "spacegroup_number_initial": sg0[1],
                "spacegroup_final": sg1[0], "spacegroup_number_final": sg1[1],
                "symmetry_change": ("none" if sg0[1] == sg1[1] else
                                    "supergroup" if superg else "lost"),
                "workdir": str(a.workdir), **record,
                "structure": formats.atoms_to_dict(relaxed)}

    return run_stage("relax", body, a.out, {"intake": a.intake}, _settings(a),
                     {"poscar": a.poscar})


def displace(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from .displace import displace as run_displace
        from .symmetry import forces_vanish_by_symmetry, symmetrize

        relaxed = formats.atoms_from_dict(ctx.upstream["relax"]["structure"])
        # exact symmetry for the symmetry-adapted fits (the relaxation leaves ~1e-7 Å)
        prim, shift = symmetrize(relaxed, ctx.settings.symprec)
        d = run_displace(prim, ctx.settings, _basis_cache(a.out))
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

    return run_stage("displace", body, a.out, {"relax": a.relax}, _settings(a))


def _basis_cache(displace_json: str) -> Path:
    """The symfc basis file the ``displace`` stage leaves beside its result."""
    from .displace import BASIS_FILE

    return Path(displace_json).parent / BASIS_FILE


def _reference_needed(disp: dict) -> bool:
    """Whether the undisplaced supercell must be evaluated: not when the site symmetry of
    every atom forbids a force on it (``displace`` decides; rock salt, fluorite)."""
    return not disp.get("residual_forces_zero_by_symmetry", False)


def forces(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        import numpy as np

        from .forces import compute_forces, compute_forces_adaptive

        s, disp = ctx.settings, ctx.upstream["displace"]
        sc = formats.atoms_from_dict(disp["supercell"])
        listed = np.asarray(disp["displacements_A"])
        loaded = _calculator(ctx, a.device)
        reference = _reference_needed(disp)
        out: dict = {}
        if s.adaptive:
            per = 2 if disp["plus_minus"] else 1
            fs, out["adaptive"] = compute_forces_adaptive(
                sc, listed, loaded.calculator, disp["n_snapshots"], per * s.adaptive_batch,
                _msd_check(disp, s, _basis_cache(a.displace)), s.adaptive_tolerance,
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

    return run_stage("forces", body, a.out, {"displace": a.displace}, _settings(a),
                     {"forceset": a.forceset})


def _msd_check(disp: dict, s, basis_cache: Path | None = None):
    """The adaptive-snapshot criterion: mobile-ion MSD (Å²) at ``s.temperature_K`` on a
    20 Å mesh from a symfc least-squares fc2 of the snapshots so far (None while the fit is
    not determined). Needs phonopy and symfc in the backend environment."""
    import numpy as np

    from .displace import free_parameters, symfc_basis
    from .fit_ifc import fit_symfc, independent_equations
    from .harmonic import mesh_numbers, phonopy_from_displace
    from .lsq import DesignError
    from .phonon_descriptors import mesh_msd

    ph = phonopy_from_displace(disp)
    basis = symfc_basis(formats.atoms_from_dict(disp["supercell"]), (2,), s.fc2_cutoff_A,
                        cache=basis_cache)
    n_free = free_parameters(basis)[2]  # the basis is built once for every batch's fit
    mobile = np.array(ph.primitive.symbols) == s.mobile_ion
    mesh = mesh_numbers(ph, 20.0)

    def check(displacements, forces):
        if independent_equations(displacements) < n_free:
            return None
        try:
            ph.force_constants = fit_symfc(ph, displacements, forces, s.fc2_cutoff_A,
                                           basis=basis)
        except DesignError:  # not determined yet: the next batch may be
            return None
        return float(mesh_msd(ph, mesh, [s.temperature_K])[0][mobile].mean())

    return check


def fit_ifc(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from .fit_ifc import alpha_warning, fit_force_constants
        from .harmonic import phonopy_from_displace

        fs = formats.read_forceset(a.forceset)
        ph = phonopy_from_displace(ctx.upstream["displace"])
        fit = fit_force_constants(ph, fs.displacements_A, fs.forces_eV_A, ctx.settings,
                                  python=a.pheasy_python or None,
                                  basis_cache=_basis_cache(a.displace))
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
                     _settings(a), {"fc2": a.fc2, "fc3": a.fc3})


def stability(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from .harmonic import phonopy_from_displace
        from .plots import plot_bands
        from .stability import assess_stability

        ph = phonopy_from_displace(ctx.upstream["displace"], formats.read_fc2(a.fc2))
        # the model is loaded only for the second look at an unstable verdict
        st, arrays = assess_stability(ph, ctx.settings,
                                      lambda: _calculator(ctx, a.device).calculator)
        plot_bands(arrays, st, f"{ctx.mid}: phonon bands",
                   ctx.outputs["figures"] / "bands")
        ctx.log(f"{'stable' if st['stable'] else st['reason']} (lowest "
                f"{st['lowest_frequency_THz']:.3f} THz)")
        return {**st, "status": "ok" if st["stable"] else "failed"}

    return run_stage("stability", body, a.out, {"displace": a.displace, "fit_ifc": a.fit_ifc},
                     _settings(a), {"figures": a.figures})


def stability_recheck(a: argparse.Namespace) -> int:
    """The stability screen with a second MLP: its forces on the displaced supercells the
    first model used, a symfc least-squares fc2, the same verdict, and both side by side."""

    def body(ctx: Context) -> dict:
        import numpy as np

        from .displace import free_parameters, symfc_basis
        from .fit_ifc import fit_symfc, independent_equations
        from .forces import compute_forces
        from .harmonic import phonopy_from_displace
        from .stability import assess_stability

        s, disp = ctx.settings, ctx.upstream["displace"]
        first = ctx.upstream["stability"]
        sc = formats.atoms_from_dict(disp["supercell"])
        listed = np.asarray(disp["displacements_A"])[:disp["n_snapshots"]]
        basis = symfc_basis(sc, cache=_basis_cache(a.displace))
        n_free = free_parameters(basis)[2]
        if independent_equations(listed) < n_free:
            return {"status": "failed", "reason": (
                f"{independent_equations(listed)} force equations for {n_free} free fc2 "
                "parameters: too few for a least-squares re-check; raise phonons.safety_factor")}
        loaded = _calculator(ctx, a.device)
        reference = _reference_needed(disp)
        fs = compute_forces(sc, listed, loaded.calculator, reference=reference)
        ph = phonopy_from_displace(disp)
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
        ctx.log(reason)
        return {"second_model": name, "stable": st["stable"],
                "lowest_frequency_THz": st["lowest_frequency_THz"],
                "n_imaginary_modes": st["n_imaginary_modes"],
                "acoustic_cutoff_THz": st["acoustic_cutoff_THz"],
                "first_model_stable": first_stable,
                "first_model_lowest_frequency_THz": first.get("lowest_frequency_THz"),
                "verdicts_agree": agree,
                "n_force_evaluations": len(listed) + int(reference),
                "status": "ok", "reason": reason}

    return run_stage("stability_recheck", body, a.out,
                     {"displace": a.displace, "stability": a.stability}, _settings(a),
                     gate="any")


def fd_check(a: argparse.Namespace) -> int:
    """phonopy finite displacements with the same model on the same supercell against the
    fitted fc2 (:mod:`phonion.fd_check`); ``failed`` when they disagree."""

    def body(ctx: Context) -> dict:
        from .fd_check import compare, finite_displacement_phonopy, summary_line
        from .harmonic import phonopy_from_displace

        s, disp = ctx.settings, ctx.upstream["displace"]
        loaded = _calculator(ctx, "cpu")
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
                     {"displace": a.displace, "fit_ifc": a.fit_ifc}, _settings(a),
                     {"fc2": a.fd_fc2})


def phonon_descriptors(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from .harmonic import phonopy_from_displace
        from .phonon_descriptors import phonon_descriptors as describe
        from .plots import plot_coupling_pdos, plot_msd_modes

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
                     {"displace": a.displace, "stability": a.stability}, _settings(a),
                     {"arrays": a.arrays, "figures": a.figures})


def md(a: argparse.Namespace) -> int:
    s = _settings(a, temperature_K=float(a.temperature))

    def body(ctx: Context) -> dict:
        import os

        from .md import run_adaptive, run_md

        loaded = _calculator(ctx, a.device)
        atoms = formats.atoms_from_dict(ctx.upstream["displace"]["supercell"])
        fc = formats.read_fc2(a.fc2) if s.initial_state == "harmonic" else None
        partial = Path(a.trajectory).with_suffix(".partial.h5")  # survives a killed job
        ctx.log(f"{len(atoms)} atoms, {s.temperature_K:g} K, {s.thermostat}, "
                f"{s.equilibration_steps} + {s.production_steps} steps of {s.timestep_fs} fs")
        run = run_adaptive if s.adaptive else run_md
        summary = run(atoms, loaded.calculator, s, partial, force_constants=fc)
        os.replace(partial, a.trajectory)
        ctx.log(f"{summary['n_frames']} frames, {summary['steps_per_s']:.2f} steps/s")
        return {"temperature_K": s.temperature_K, **summary}

    return run_stage("md", body, a.out, {"displace": a.displace, "stability": a.stability},
                     s, {"trajectory": a.trajectory})


def _log_diffusion(ctx: Context, label: str, out: dict) -> None:
    if out["diffusive"]:
        ctx.log(f"{label}: D = {out['d_avg_A2_ps']:.3e} ± {out['d_avg_stderr_A2_ps']:.1e} Å²/ps")
    else:
        ctx.log(f"{label}: {out['reason']}")
    if out.get("vdos_centre_mobile_THz"):
        ctx.log(f"{out['mobile_ion']} VDOS centre {out['vdos_centre_mobile_THz']:.2f} THz")


def diffusion(a: argparse.Namespace) -> int:
    if not a.md:  # standalone: any trajectory ASE reads → DIR/diffusion.json
        return diffusion_standalone(a)

    def body(ctx: Context) -> dict:
        from .diffusion import analyze_trajectory
        from .plots import plot_msd, plot_vdos

        cutoff = ctx.upstream["stability"].get("acoustic_cutoff_THz")
        out, arrays = analyze_trajectory(formats.read_trajectory(a.trajectory), ctx.settings,
                                         cutoff)
        formats.write_arrays(ctx.outputs["arrays"], arrays)
        T = ctx.upstream["md"]["temperature_K"]
        title = f"{ctx.mid}, {T:g} K"
        plot_msd(arrays, out, title + ": MSD", ctx.outputs["figures"] / "msd")
        plot_vdos(arrays, out, cutoff, title + ": VDOS", ctx.outputs["figures"] / "vdos")
        _log_diffusion(ctx, f"{T:g} K", out)
        return {"temperature_K": T, **out}

    return run_stage("diffusion", body, a.out, {"md": a.md, "stability": a.stability},
                     _settings(a), {"arrays": a.arrays, "figures": a.figures})


def diffusion_standalone(a: argparse.Namespace) -> int:
    """``phonion diffusion --trajectory FILE --out DIR``: the diffusion stage on any
    trajectory ASE reads, without the rest of the chain; writes DIR/diffusion.json (the
    workflow's format), DIR/diffusion.h5 and DIR/figures/."""
    out_dir = Path(a.out)
    overrides = {"mobile_ion": a.mobile_ion} if a.mobile_ion else {}
    settings = _settings(a, **overrides)

    def body(ctx: Context) -> dict:
        from .diffusion import analyze_trajectory
        from .plots import plot_msd, plot_vdos

        traj = formats.read_any_trajectory(
            a.trajectory, float(a.frame_dt_ps) if a.frame_dt_ps else None, a.format or None,
            float(a.temperature_K) if a.temperature_K else None)
        out, arrays = analyze_trajectory(traj, ctx.settings)
        formats.write_arrays(ctx.outputs["arrays"], arrays)
        title = f"{ctx.mid}" + (f", {float(a.temperature_K):g} K" if a.temperature_K else "")
        plot_msd(arrays, out, title + ": MSD", ctx.outputs["figures"] / "msd")
        plot_vdos(arrays, out, None, title + ": VDOS", ctx.outputs["figures"] / "vdos")
        _log_diffusion(ctx, Path(a.trajectory).name, out)
        T = float(a.temperature_K) if a.temperature_K else out["temperature_mean_K"]
        return {"temperature_K": T, "source": str(a.trajectory),
                "velocities_from_positions": bool(traj["velocities_from_positions"]), **out}

    name = Path(a.trajectory).name.split(".")[0] or "trajectory"
    out_dir.mkdir(parents=True, exist_ok=True)
    code = run_stage("diffusion", body, out_dir / "diffusion.json", None, settings,
                     {"arrays": out_dir / "diffusion.h5", "figures": out_dir / "figures"},
                     mid=name)
    result = formats.read_result(out_dir / "diffusion.json")
    print(f"{result['status']}: " + (
        f"D = {result['d_avg_cm2_s']:.3e} cm²/s, 95 % [{result['d_avg_ci95_A2_ps'][0] * 1e-4:.3e}, "
        f"{result['d_avg_ci95_A2_ps'][1] * 1e-4:.3e}]" if result.get("diffusive")
        else result["reason"]) + f" → {out_dir / 'diffusion.json'}")
    return code


def dynamics(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from .dynamics import analyze_dynamics
        from .plots import plot_dynamics

        T = ctx.upstream["md"]["temperature_K"]
        out, arrays = analyze_dynamics(formats.read_trajectory(a.trajectory), ctx.settings)
        formats.write_arrays(ctx.outputs["arrays"], arrays)
        plot_dynamics(arrays, out, f"{ctx.mid}, {T:g} K", ctx.outputs["figures"] / "dynamics")
        ctx.log(f"{T:g} K: {', '.join(out['analyses'])}; units {out['polyanions'] or 'none'}")
        return {"temperature_K": T, **out}

    return run_stage("dynamics", body, a.out, {"md": a.md}, _settings(a),
                     {"arrays": a.arrays, "figures": a.figures})


def arrhenius(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from .arrhenius import arrhenius_stage
        from .plots import plot_arrhenius

        out = arrhenius_stage(list(ctx.upstream.values()), ctx.settings)
        plot_arrhenius(out, f"{ctx.mid}: Arrhenius", ctx.outputs["figures"] / "arrhenius")
        ctx.log(f"Ea = {out['ea_eV']:.3f} ± {out['ea_stderr_eV']:.3f} eV" if "ea_eV" in out
                else out["reason"])
        return out

    upstream = {f"diffusion_{i}": p for i, p in enumerate(a.diffusion)}
    return run_stage("arrhenius", body, a.out, upstream, _settings(a),
                     {"figures": a.figures}, gate="any")


def structure_descriptors(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from pymatgen.core import Structure

        from .structure_descriptors import structure_descriptors as describe

        s = ctx.settings
        out = describe(Structure.from_file(a.poscar), s.mobile_ion, s.symprec)
        ctx.log(f"{out['formula']} {out['spacegroup']}: {s.mobile_ion} CN "
                f"{out['descriptors']['mobile_cn']:.2f}")
        return out

    return run_stage("structure_descriptors", body, a.out, {"relax": a.relax}, _settings(a))


def elastic(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from .calculators import check_elements
        from .elastic import elastic as run_elastic

        s = ctx.settings
        atoms = formats.atoms_from_dict(ctx.upstream["relax"]["structure"])
        loaded = _calculator(ctx, a.device)
        check_elements(loaded, atoms.get_chemical_symbols())
        out = run_elastic(atoms, loaded.calculator, s.strains, s.fmax_eV_A, s.max_steps,
                          s.relax_ions)
        d = out["descriptors"]
        if not out["mechanically_stable"]:  # a finding: no moduli, the chain goes on
            ctx.log(f"mechanically unstable: {out['reason']}")
        else:
            ctx.log(f"K = {d['bulk_modulus_GPa']:.1f} GPa, G = {d['shear_modulus_GPa']:.1f} "
                    f"GPa, θ_D = {d['debye_temperature_K']:.0f} K")
        return out

    return run_stage("elastic", body, a.out, {"relax": a.relax}, _settings(a))


# --- the campaign analysis (bodies in phonion.campaign.stages) ---------------------------

def dft_forces(a: argparse.Namespace) -> int:
    """DFT static forces on the displaced supercells of ``displace.json`` (the MLP saw the
    same ones), run by run in ``--workdir``; finished runs are reused on a rerun."""

    def body(ctx: Context) -> dict:
        import numpy as np

        from .dft.forces import static_forces

        s, disp = ctx.settings, ctx.upstream["displace"]
        engine, protocol, run_protocol, kwargs = _dft_run_setup(s, a)
        sc = formats.atoms_from_dict(disp["supercell"])
        listed = np.asarray(disp["displacements_A"])[:disp["n_snapshots"]]
        fs, record = static_forces(engine, protocol, sc, listed, a.workdir, kwargs,
                                   log=ctx.log, run_protocol=run_protocol)
        fs.meta = {"source": "dft", "engine": s.engine}
        formats.write_forceset(ctx.outputs["forceset"], fs)
        residual = float(np.abs(fs.residual_forces_eV_A).max())
        ctx.log(f"{record['n_runs']} {s.engine} runs of {len(sc)} atoms "
                f"({len(record['runs_reused'])} reused); max residual force "
                f"{residual:.2e} eV/Å")
        return {"engine": s.engine, "n_snapshots": len(listed),
                "n_force_evaluations": record["n_runs"],
                "max_residual_force_eV_A": residual, "workdir": str(a.workdir), **record}

    return run_stage("dft_forces", body, a.out, {"displace": a.displace}, _settings(a),
                     {"forceset": a.forceset})


def dft_validation(a: argparse.Namespace) -> int:
    """MLP against DFT on the same snapshots: force RMSE, fc2 RMSE, stability verdicts,
    mobile-ion MSD ratio, band overlay (seed 000 §2.2, Fig. S8)."""

    def body(ctx: Context) -> dict:
        from .dft_validation import compare
        from .plots import plot_band_overlay

        s, disp = ctx.settings, ctx.upstream["displace"]
        mlp, dft = formats.read_forceset(a.forceset), formats.read_forceset(a.dft_forceset)
        out, arrays = compare(disp, mlp, dft, s)
        model = ctx.upstream["forces"].get("provenance", {}).get("model") or {}
        mlp_name = ":".join(str(model[k]) for k in ("backend", "model") if model.get(k)) or "MLP"
        engine = ctx.upstream["dft_forces"]["engine"]
        formats.write_arrays(ctx.outputs["arrays"], arrays)
        plot_band_overlay(arrays, out, (f"MLP ({mlp_name})", f"DFT ({engine})"),
                          f"{ctx.mid}: MLP vs DFT phonons ({out['n_snapshots']} snapshots)",
                          ctx.outputs["figures"] / "bands_mlp_dft")
        hot = out["by_temperature_K"]
        t = max(hot, key=float) if hot else None
        ctx.log(f"force RMSE {out['force_rmse_meV_A']:.1f} meV/Å, fc2 RMSE "
                f"{out['fc2_rmse_eV_A2']:.3f} eV/Å², stability "
                f"{'agrees' if out['stability_agrees'] else 'DISAGREES'}"
                + (f", {s.mobile_ion} MSD ratio {hot[t]['msd_ratio_mlp_dft']:.3f} at {t} K"
                   if t else f" ({out['reason']})"))
        return {"mlp": mlp_name, "engine": engine, **out}

    return run_stage("dft_validation", body, a.out,
                     {"displace": a.displace, "forces": a.forces, "dft_forces": a.dft_forces},
                     _settings(a), {"arrays": a.arrays, "figures": a.figures})


def _dft_run_setup(s, a) -> tuple:
    """(engine, protocol, protocol with the run command, run keyword arguments) of a DFT
    stage: the command comes from the job's environment, never from its params."""
    import dataclasses
    import os

    from .dft import get_engine

    engine, protocol = get_engine(s.engine), s.protocol()
    commands = {"command": a.run_command} if a.run_command else {}
    if getattr(a, "gamma_command", "") and s.engine == "vasp":
        commands["gamma_command"] = a.gamma_command
    kwargs: dict = {}
    if s.engine == "cp2k":
        timeout = getattr(a, "timeout_min", "")
        kwargs = {"timeout_s": float(timeout) * 60 if timeout else None,
                  "env": {**os.environ,
                          "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}}
    return engine, protocol, dataclasses.replace(protocol, **commands), kwargs


def aimd(a: argparse.Namespace) -> int:
    """NVT AIMD of one material at one temperature in segments that continue across
    wall-time limits; the trajectory in the MLP MD's format."""
    s = _settings(a, temperature_K=float(a.temperature))

    def body(ctx: Context) -> dict:
        from .dft.aimd import run_aimd

        engine, protocol, run_protocol, kwargs = _dft_run_setup(s, a)
        atoms = formats.atoms_from_dict(ctx.upstream["displace"]["supercell"])
        ctx.log(f"{len(atoms)} atoms, {s.temperature_K:g} K, {s.steps} steps with {s.engine}")
        traj, record = run_aimd(engine, protocol, atoms, s.temperature_K, s.steps, a.workdir,
                                kwargs, log=ctx.log, run_protocol=run_protocol)
        formats.write_trajectory(ctx.outputs["trajectory"], traj)
        n = len(traj["step"])
        duration = float(traj["frame_dt_ps"]) * (n - 1)
        ctx.log(f"{n} frames, {duration:.3f} ps in {len(record['segments'])} segment(s)")
        return {"temperature_K": s.temperature_K, "engine": s.engine, "steps": s.steps,
                "n_frames": n, "duration_ps": duration, "workdir": str(a.workdir), **record}

    return run_stage("aimd", body, a.out, {"displace": a.displace}, s,
                     {"trajectory": a.trajectory})


def aimd_validation(a: argparse.Namespace) -> int:
    """MLP MD against AIMD at one temperature: both through the same diffusion analysis,
    D ratio with both intervals, MSD(t) overlay (seed 000 Figs. S6–S7)."""

    def body(ctx: Context) -> dict:
        from .aimd_validation import compare
        from .plots import plot_msd_overlay

        T = ctx.upstream["aimd"]["temperature_K"]
        out, arrays = compare(formats.read_trajectory(a.trajectory), ctx.upstream["diffusion"],
                              formats.read_arrays(a.mlp_arrays), ctx.settings)
        formats.write_arrays(ctx.outputs["arrays"], arrays)
        engine = ctx.upstream["aimd"]["engine"]
        plot_msd_overlay(arrays, out, ("MLP MD", f"AIMD ({engine})"),
                         f"{ctx.mid}, {T:g} K: {ctx.settings.mobile_ion} MSD, MLP vs AIMD",
                         ctx.outputs["figures"] / "msd_mlp_aimd")
        ratio = out["d_ratio_mlp_aimd"]
        ctx.log((f"D ratio MLP/AIMD {ratio:.2f}" if ratio else out["reason"])
                + f"; MSD ratio at {out['common_lag_ps']:.3f} ps "
                f"{out['msd_ratio_mlp_aimd']:.3f}")
        return {"temperature_K": T, "engine": engine, **out}

    return run_stage("aimd_validation", body, a.out,
                     {"aimd": a.aimd, "diffusion": a.mlp_diffusion}, _settings(a),
                     {"arrays": a.arrays, "figures": a.figures})


def mlp_benchmark(a: argparse.Namespace) -> int:
    """One more MLP against a validated material's DFT forces: its forces on the same
    snapshots, then the comparison of ``dft_validation`` (seed 000 §2.2)."""

    def body(ctx: Context) -> dict:
        import time

        from .calculators import get_calculator
        from .dft_validation import compare
        from .forces import compute_forces

        entry = json.loads(a.model_json)
        dft = formats.read_forceset(a.dft_forceset)
        loaded = get_calculator(entry["backend"], entry["model"], a.device, entry["dtype"],
                                entry["modal"])
        ctx.model = loaded.description
        t0 = time.perf_counter()
        mlp = compute_forces(dft.supercell, dft.displacements_A, loaded.calculator, log=None)
        per_call = (time.perf_counter() - t0) / (len(dft.displacements_A) + 1)
        out, _ = compare(ctx.upstream["displace"], mlp, dft, ctx.settings)
        name = ":".join(x for x in (entry["backend"], entry["model"], entry["modal"]) if x)
        hot = out["by_temperature_K"]
        t = max(hot, key=float) if hot else None
        ctx.log(f"{name}: force RMSE {out['force_rmse_meV_A']:.1f} meV/Å, stability "
                f"{'agrees' if out['stability_agrees'] else 'DISAGREES'}"
                + (f", MSD ratio {hot[t]['msd_ratio_mlp_dft']:.3f} at {t} K" if t else "")
                + f", {per_call:.2f} s per force call")
        return {"mlp": name, "engine": ctx.upstream["dft_forces"]["engine"],
                "seconds_per_force_call": per_call, **out}

    from .settings import DftValidationSettings

    return run_stage("mlp_benchmark", body, a.out,
                     {"displace": a.displace, "dft_forces": a.dft_forces},
                     DftValidationSettings.from_json(a.settings))


def mlp_benchmark_table(a: argparse.Namespace) -> int:
    """results/campaign/mlp_benchmark.csv and its bar chart (not a stage)."""
    from .campaign.validation import benchmark_table
    from .plots import plot_mlp_benchmark

    rows, summary = benchmark_table([formats.read_result(p) for p in a.results])
    for frame, path in ((rows, a.csv), (summary, a.summary)):
        with formats.atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    plot_mlp_benchmark(summary, str(Path(a.figure).with_suffix("")))
    print(f"{len(rows)} rows, {len(summary)} models -> {a.csv}, {a.summary}, {a.figure}")
    return 0


def validation_table(a: argparse.Namespace) -> int:
    """results/campaign/validation.csv from the dft_validation results (not a stage)."""
    from .campaign.validation import validation_table as table

    frame = table([formats.read_result(p) for p in a.results])
    with formats.atomic_path(a.csv) as tmp:
        frame.to_csv(tmp, index=False)
    print(f"{len(frame)} rows -> {a.csv}")
    return 0


def campaign_table(a: argparse.Namespace) -> int:
    from .campaign import stages

    return run_stage("campaign_table", lambda ctx: stages.table(ctx, a.results), a.out,
                     settings=_settings(a), outputs={"csv": a.csv, "parquet": a.parquet},
                     mid="campaign")


def campaign_statistics(a: argparse.Namespace) -> int:
    from .campaign import stages

    return run_stage("campaign_statistics", lambda ctx: stages.statistics(ctx, a.table), a.out,
                     {"table": a.table_result}, _settings(a), {"csv": a.csv})


def campaign_clustering(a: argparse.Namespace) -> int:
    from .campaign import stages

    return run_stage("campaign_clustering", lambda ctx: stages.clustering(ctx, a.table), a.out,
                     {"table": a.table_result}, _settings(a), {"csv": a.csv})


def campaign_model(a: argparse.Namespace) -> int:
    from .campaign import stages

    return run_stage("campaign_model", lambda ctx: stages.model(ctx, a.table), a.out,
                     {"table": a.table_result}, _settings(a),
                     {"parity": a.parity, "predictions": a.predictions})


def campaign_figures(a: argparse.Namespace) -> int:
    from .campaign import stages

    def body(ctx: Context) -> dict:
        return stages.figures(ctx, a.table, a.statistics, a.clustering, a.clusters, a.model,
                              a.parity)

    # only the table gates: an analysis that failed is drawn as such, the others still are
    return run_stage("campaign_figures", body, a.out, {"table": a.table_result},
                     _settings(a), {"figures": a.figures})


def campaign_summary(a: argparse.Namespace) -> int:
    from .campaign import stages

    def body(ctx: Context) -> dict:
        return stages.summary(ctx, a.table_result, a.table, a.statistics, a.clustering,
                              a.model, a.predictions)

    # only the table gates: the summary reports an analysis that failed and the others
    return run_stage("campaign_summary", body, a.out, {"table": a.table_result},
                     _settings(a), {"summary": a.summary})


def model(a: argparse.Namespace) -> int:
    """Not a stage: is the configured model on this machine? Prints its file, or the reason
    (exit 2). The workflow asks this of each backend environment when it parses."""
    from .calculators import model_file
    from .errors import ModelUnavailable

    try:
        print(model_file(a.backend, a.model) or "analytic potential (no file)")
        return 0
    except ModelUnavailable as exc:
        print(exc)
        return 2


def fetch(a: argparse.Namespace) -> int:
    """Not a stage: run once before a campaign. Query Materials Project and/or OQMD (or read
    their cache), filter, deduplicate, write the structures table (docs/databases.md)."""
    import yaml

    from .databases import DatabaseSettings, summary
    from .databases import fetch as run_fetch
    from .errors import PhonionError

    try:
        config = {}
        if a.config:
            try:
                config = yaml.safe_load(Path(a.config).read_text()) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise PhonionError(f"cannot read --config {a.config}: {exc}") from None
            _check_schema(config, a.config)
        s = DatabaseSettings.from_config(config, sources=tuple(a.source) if a.source else None,
                                         output=a.output or None, cache=a.cache or None)
        result = run_fetch(s, refresh=a.refresh, offline=a.offline)
    except PhonionError as exc:
        print(f"phonion fetch: {exc}", file=sys.stderr, flush=True)
        return 2
    print(summary(result, s), flush=True)
    return 0


def _check_schema(config: dict, where: str) -> None:
    """Validate a campaign config against the workflow's schema (jsonschema, which the
    workflow environment has; skipped without it). Raises ConfigError naming the key."""
    try:
        import jsonschema
    except ImportError:
        return
    import yaml

    from .errors import ConfigError

    schema_file = Path(__file__).resolve().parents[2] / "workflow/schemas/config.schema.yaml"
    if not schema_file.is_file():
        return
    schema = yaml.safe_load(schema_file.read_text())
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(config))
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ConfigError(f"{where}: {key}: {error.message}")


def _settings(a: argparse.Namespace, **extra):
    return SETTINGS[a.command].from_json(a.settings, **extra)


#: command → (function, help, required options, optional options with defaults). Commands
#: are the stage names; every command also takes ``--settings`` and ``--out``.
COMMANDS = {
    "intake": (intake, "read and triage one structure", ["--id", "--source"], {}),
    "relax": (relax, "relax one material with the configured MLP", ["--intake", "--poscar"],
              {"--device": "cpu"}),
    "dft_relax": (dft_relax, "relax one material with the DFT engine of relax.engine",
                  ["--intake", "--poscar", "--workdir"],
                  {"--run-command": "", "--gamma-command": "", "--timeout-min": ""}),
    "displace": (displace, "supercell and random displacements", ["--relax"], {}),
    "forces": (forces, "MLP forces on all displaced supercells", ["--displace", "--forceset"],
               {"--device": "cpu"}),
    "fit_ifc": (fit_ifc, "force constants with pheasy",
                ["--displace", "--forces", "--forceset", "--fc2"],
                {"--fc3": "", "--pheasy-python": ""}),
    "stability": (stability, "dynamic stability screen (the MLP checks an unstable verdict)",
                  ["--displace", "--fit-ifc", "--fc2", "--figures"], {"--device": "cpu"}),
    "stability_recheck": (stability_recheck, "stability screen again with a second MLP",
                          ["--displace", "--stability"], {"--device": "cpu"}),
    "fd_check": (fd_check, "phonopy finite displacements with the same model, against the fit",
                 ["--displace", "--fit-ifc", "--fc2", "--fd-fc2"], {}),
    "phonon_descriptors": (phonon_descriptors, "harmonic phonon descriptors and figures",
                           ["--displace", "--stability", "--fc2", "--arrays", "--figures"], {}),
    "md": (md, "NVT MD with the MLP (resumable)",
           ["--displace", "--stability", "--fc2", "--temperature", "--trajectory"],
           {"--device": "cpu"}),
    "diffusion": (diffusion, "MSD, D, melt filter and VDOS of one trajectory (workflow: "
                  "--md ... ; standalone: --trajectory FILE --out DIR)", ["--trajectory"],
                  {"--md": "", "--stability": "", "--arrays": "", "--figures": "",
                   "--frame-dt-ps": "", "--mobile-ion": "", "--temperature-K": "",
                   "--format": ""}),
    "dynamics": (dynamics, "optional g(r), van Hove, reorientation, tetrahedral angles",
                 ["--md", "--trajectory", "--arrays", "--figures"], {}),
    "arrhenius": (arrhenius, "Ea, D0 and conductivity from D(T)", ["--diffusion", "--figures"],
                  {}),
    "structure_descriptors": (structure_descriptors, "structure descriptors of the relaxed cell",
                              ["--relax", "--poscar"], {}),
    "elastic": (elastic, "elastic constants and moduli with the MLP", ["--relax"],
                {"--device": "cpu"}),
    "dft_forces": (dft_forces, "DFT forces on the displaced supercells (resumable)",
                   ["--displace", "--forceset", "--workdir"],
                   {"--run-command": "", "--gamma-command": "", "--timeout-min": ""}),
    "dft_validation": (dft_validation, "MLP against DFT phonons on the same snapshots",
                       ["--displace", "--forces", "--forceset", "--dft-forces",
                        "--dft-forceset", "--arrays", "--figures"], {}),
    "aimd": (aimd, "NVT AIMD of one material at one temperature (continues cut runs)",
             ["--displace", "--temperature", "--workdir", "--trajectory"],
             {"--run-command": "", "--gamma-command": ""}),
    "aimd_validation": (aimd_validation, "MLP MD against AIMD: D ratio and MSD overlay",
                        ["--aimd", "--trajectory", "--mlp-diffusion", "--mlp-arrays", "--arrays",
                         "--figures"], {}),
    "mlp_benchmark": (mlp_benchmark, "another MLP against a validated material's DFT forces",
                      ["--displace", "--dft-forces", "--dft-forceset", "--model-json"],
                      {"--device": "cpu"}),
    "mlp_benchmark_table": (mlp_benchmark_table, "results/campaign/mlp_benchmark.csv "
                            "(not a stage)", ["--results", "--csv", "--summary", "--figure"], {}),
    "validation_table": (validation_table, "results/campaign/validation.csv (not a stage)",
                         ["--results", "--csv"], {}),
    "campaign_table": (campaign_table, "the campaign table (CSV + parquet)",
                       ["--results", "--csv", "--parquet"], {}),
    "campaign_statistics": (campaign_statistics, "correlations with p-values and intervals",
                            ["--table", "--table-result", "--csv"], {}),
    "campaign_clustering": (campaign_clustering, "PCA and k-means of the descriptors",
                            ["--table", "--table-result", "--csv"], {}),
    "campaign_model": (campaign_model, "ML model of log10 D (grouped CV)",
                       ["--table", "--table-result", "--parity", "--predictions"], {}),
    "campaign_figures": (campaign_figures, "campaign figures",
                         ["--table", "--table-result", "--statistics", "--clustering",
                          "--clusters", "--model", "--parity", "--figures"], {}),
    "campaign_summary": (campaign_summary, "results/campaign/summary.md",
                         ["--table", "--table-result", "--statistics", "--clustering", "--model",
                          "--predictions", "--summary"], {}),
    "model": (model, "check that the configured MLP is on this machine (not a stage)",
              ["--backend"], {"--model": ""}),
    "fetch": (fetch, "structures from Materials Project / OQMD, cached and deduplicated "
              "(not a stage: run once before the campaign)", [],
              {"--config": "", "--output": "", "--cache": ""}),
}


#: (command, option) pairs that take a list of files.
MANY_FILES = {("arrhenius", "--diffusion"), ("validation_table", "--results"),
              ("mlp_benchmark_table", "--results")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="phonion", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (func, text, required, optional) in COMMANDS.items():
        p = sub.add_parser(name, help=text)
        stage = name not in ("model", "fetch", "validation_table", "mlp_benchmark_table")
        if name == "fetch":
            p.add_argument("--source", nargs="+", choices=["mp", "oqmd"],
                           help="sources to query (default: databases.sources)")
            p.add_argument("--refresh", action="store_true",
                           help="ask the databases again instead of reading the cache")
            p.add_argument("--offline", action="store_true",
                           help="never ask: fail when a query is not in the cache")
        if name == "diffusion":  # standalone use needs no settings
            p.add_argument("--settings", default="{}")
            p.add_argument("--out", required=True)
        common = ["--settings", "--out"] if stage and name != "diffusion" else []
        for opt in [*common, *required]:
            p.add_argument(opt, required=True,
                           nargs="+" if (name, opt) in MANY_FILES else None)
        for opt, default in optional.items():
            p.add_argument(opt, default=default)
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    return main_guard(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
