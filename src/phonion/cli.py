"""Command line used by the Snakemake rules: ``python -m phonion <stage> ...``.

This layer does the file I/O and turns every outcome into a stage result
file with ``status`` and ``reason``: domain errors (a rejected structure, an
unsupported element, a model that would need a download) and unexpected
exceptions alike become one line in the campaign status table, so one bad
material never takes the campaign down. Rules call it through the Python of
the backend's own environment, which is how one campaign uses several
environments (see ``environments`` in ``config/README.md``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

from .errors import PhonionError, StructureRejected, UnsupportedElements
from .io import atoms_from_dict, atoms_to_dict, read_json, write_json_atomic
from .provenance import file_sha256, provenance


def _result(mid: str, stage: str, status: str, reason: str = "", **data) -> dict:
    return {"material_id": mid, "stage": stage, "status": status, "reason": reason, **data}


def _error_status(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, (StructureRejected, UnsupportedElements)):
        return "rejected", str(exc)
    if isinstance(exc, PhonionError):
        return "failed", str(exc)
    traceback.print_exc()
    return "error", f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def cmd_intake(args: argparse.Namespace) -> int:
    from .intake import describe, read_structure, triage

    settings = json.loads(args.settings)
    out = {"source": str(args.source)}
    try:
        out["source_sha256"] = file_sha256(args.source)
        atoms = read_structure(args.source)
        prim = triage(atoms, settings["mobile_ion"], settings["max_atoms"],
                      settings["min_distance_A"], settings["symprec"])
        res = _result(args.id, "intake", "ok", **out,
                      input=describe(atoms, settings["symprec"]),
                      primitive=describe(prim, settings["symprec"]),
                      structure=atoms_to_dict(prim))
        print(f"[intake] {args.id}: {res['primitive']['formula']} "
              f"{res['primitive']['spacegroup']} accepted", flush=True)
    except Exception as exc:  # noqa: BLE001 - recorded in the status table
        status, reason = _error_status(exc)
        res = _result(args.id, "intake", status, reason, **out)
        print(f"[intake] {args.id}: {status}: {reason}", flush=True)
    res["provenance"] = provenance(settings)
    write_json_atomic(args.out, res)
    return 0


def cmd_relax(args: argparse.Namespace) -> int:
    from .calculators import check_elements, get_calculator
    from .relax import relax, verdict

    settings = json.loads(args.settings)
    calc_cfg = json.loads(args.calculator)
    upstream = read_json(args.input)
    mid = upstream["material_id"]
    model = {}
    if upstream["status"] != "ok":
        res = _result(mid, "relax", "skipped", f"{upstream['stage']}: {upstream['status']}")
    else:
        try:
            t0 = time.perf_counter()
            atoms = atoms_from_dict(upstream["structure"])
            loaded = get_calculator(calc_cfg["backend"], calc_cfg.get("model", ""),
                                    calc_cfg.get("device", "cpu"), calc_cfg.get("dtype", "float64"))
            model = loaded.description
            check_elements(loaded, atoms.get_chemical_symbols())
            print(f"[relax] {mid}: {len(atoms)} atoms with {model['backend']} "
                  f"'{model['name']}' on {model['device']}", flush=True)
            result = relax(atoms, loaded.calculator, settings["fmax_eV_A"], settings["max_steps"],
                           settings["optimizer"], settings["cell_filter"],
                           settings["fix_symmetry"], settings["symprec"], logfile="-")
            status, reason = verdict(result, settings["fmax_eV_A"], settings["max_steps"],
                                     settings["on_symmetry_change"])
            res = _result(mid, "relax", status, reason, **result.summary(),
                          wall_time_s=time.perf_counter() - t0,
                          structure=atoms_to_dict(result.atoms))
            print(f"[relax] {mid}: {status} after {result.n_steps} steps "
                  f"({res['wall_time_s']:.1f} s), {result.spacegroup_initial[0]} -> "
                  f"{result.spacegroup_final[0]}, dV = {res['volume_change_percent']:+.2f} % "
                  f"{reason}", flush=True)
        except Exception as exc:  # noqa: BLE001 - recorded in the status table
            status, reason = _error_status(exc)
            res = _result(mid, "relax", status, reason)
            print(f"[relax] {mid}: {status}: {reason}", flush=True)
    res["provenance"] = provenance(settings, model)
    write_json_atomic(args.out, res)
    if args.structure_out:
        _write_poscar(res, args.structure_out)
    return 0


def _upstream(path: str, stage: str) -> tuple[dict, dict | None]:
    """Read an upstream result; return (result, skipped-result or None)."""
    up = read_json(path)
    if up["status"] != "ok":
        skipped = _result(up["material_id"], stage, "skipped",
                          f"{up['stage']}: {up['status']}")
        return up, skipped
    return up, None


def _phonopy_from(disp: dict, fc2_path: str | None = None):
    """The Phonopy object of a ``displace.json`` (primitive cell and supercell choice),
    with the force constants of ``fc2_path`` when given."""
    import numpy as np

    from .displace import SupercellChoice, phonopy_for
    from .phonons import read_fc2

    choice = SupercellChoice(np.array(disp["unit_matrix"]), np.array(disp["dim"]))
    ph = phonopy_for(atoms_from_dict(disp["primitive"]), choice)
    if fc2_path:
        ph.force_constants = read_fc2(fc2_path)
    return ph


def _write_flagged_arrays(path: str, status: str) -> None:
    """An arrays file holding only the stage status: the declared output of a stage that
    produced no arrays (figures are only requested for status ok)."""
    import numpy as np

    from .phonons import write_arrays

    write_arrays(path, {"status": np.bytes_(status)})


def _run_stage(stage: str, mid: str, body) -> dict:
    """Run ``body()`` → result dict; turn exceptions into a status line."""
    try:
        return body()
    except Exception as exc:  # noqa: BLE001 - recorded in the status table
        status, reason = _error_status(exc)
        print(f"[{stage}] {mid}: {status}: {reason}", flush=True)
        return _result(mid, stage, status, reason)


def cmd_displace(args: argparse.Namespace) -> int:
    from .displace import displace

    settings = json.loads(args.settings)
    up, res = _upstream(args.input, "displace")
    mid = up["material_id"]

    def body() -> dict:
        t0 = time.perf_counter()
        prim = atoms_from_dict(up["structure"])
        orders = (2, 3) if settings["fc3"] else (2,)
        d = displace(prim, settings["amplitude_A"], settings["min_atoms"], settings["max_atoms"],
                     settings["min_length_A"], orders, settings["safety_factor"],
                     settings["min_snapshots"], settings["seed"], settings["symprec"])
        out = _result(mid, "displace", "ok", **d.summary(),
                      wall_time_s=time.perf_counter() - t0,
                      primitive=atoms_to_dict(prim), supercell=atoms_to_dict(d.supercell),
                      displacements_A=d.displacements_A)
        print(f"[displace] {mid}: supercell {d.choice.supercell_matrix.tolist()} "
              f"({len(d.supercell)} atoms), {len(d.displacements_A)} snapshots of "
              f"{d.amplitude_A} Å for {d.n_free} free parameters", flush=True)
        return out

    res = res or _run_stage("displace", mid, body)
    res["provenance"] = provenance(settings)
    write_json_atomic(args.out, res)
    return 0


def cmd_forces(args: argparse.Namespace) -> int:
    import numpy as np

    from .calculators import get_calculator
    from .forces import ForceSet, compute_forces, write_forceset

    calc_cfg = json.loads(args.calculator)
    up, res = _upstream(args.input, "forces")
    mid = up["material_id"]
    model: dict = {}
    fs = None

    def body() -> dict:
        nonlocal fs, model
        t0 = time.perf_counter()
        sc = atoms_from_dict(up["supercell"])
        loaded = get_calculator(calc_cfg["backend"], calc_cfg.get("model", ""),
                                calc_cfg.get("device", "cpu"), calc_cfg.get("dtype", "float64"))
        model = loaded.description
        fs = compute_forces(sc, np.asarray(up["displacements_A"]), loaded.calculator)
        fs.meta = {"source": "mlp", "model": model}
        wall = time.perf_counter() - t0
        n_eval = len(fs.displacements_A) + 1
        print(f"[forces] {mid}: {n_eval} force evaluations of {len(sc)} atoms in {wall:.1f} s; "
              f"max residual force {np.abs(fs.residual_forces_eV_A).max():.2e} eV/Å",
              flush=True)
        return _result(mid, "forces", "ok", n_force_evaluations=n_eval, wall_time_s=wall,
                       max_residual_force_eV_A=float(np.abs(fs.residual_forces_eV_A).max()),
                       max_force_eV_A=float(np.abs(fs.forces_eV_A).max()))

    res = res or _run_stage("forces", mid, body)
    res["provenance"] = provenance({}, model)
    if fs is None:  # no forces: an empty, flagged set (downstream reads the status first)
        from ase import Atoms

        fs = ForceSet(Atoms(), np.zeros((0, 0, 3)), np.zeros((0, 0, 3)), np.zeros((0, 3)),
                      np.zeros(0), {"status": res["status"]})
    write_forceset(args.forceset, fs)
    write_json_atomic(args.out, res)
    return 0


def cmd_fit_ifc(args: argparse.Namespace) -> int:
    from .fit_ifc import fit_force_constants, force_rmse
    from .forces import read_forceset
    from .phonons import write_fc2

    settings = json.loads(args.settings)
    disp = read_json(args.displace)
    up, res = _upstream(args.forces_result, "fit_ifc")
    mid = up["material_id"]
    fc2 = None

    def body() -> dict:
        nonlocal fc2
        fs = read_forceset(args.forceset)
        ph = _phonopy_from(disp)
        fit = fit_force_constants(
            ph, fs.displacements_A, fs.forces_eV_A, fc3=settings["fc3"],
            fc3_cutoff_A=settings["fc3_cutoff_A"], alpha_min_exp=settings["alpha_min_log10"],
            alpha_max_exp=settings["alpha_max_log10"],
            rotational_sum_rules=settings["rotational_sum_rules"],
            symprec=settings["symprec"], python=args.python or None)
        fc2 = fit.fc2
        if fit.fc3 is not None:
            import h5py

            from .io import atomic_path

            with atomic_path(args.fc3) as tmp, h5py.File(tmp, "w") as h5:
                h5["fc3"] = fit.fc3
        diag = fit.diagnostics
        diag["rmse_check_eV_A"] = force_rmse(fc2, fs.displacements_A, fs.forces_eV_A)
        asr = float(abs(fc2.sum(axis=1)).max())
        reason = ""
        if diag["alpha_on_bound"]:
            reason = (f"alpha = {diag['alpha']:.1e} sits on a search bound "
                      f"(10^{diag['alpha_search_log10']}): the fit is effectively "
                      "least squares (lower bound) or over-regularised (upper bound)")
            print(f"[fit_ifc] {mid}: WARNING {reason}", flush=True)
        print(f"[fit_ifc] {mid}: alpha {diag['alpha']:.2e}, RMSE {diag['rmse_eV_A']:.2e} eV/Å, "
              f"CV RMSE {diag['cv_rmse_eV_A']:.2e} eV/Å, {diag['n_free_parameters']:.0f} free "
              f"parameters, ASR residual {asr:.1e} eV/Å²", flush=True)
        return _result(mid, "fit_ifc", "ok", reason, **diag,
                       acoustic_sum_rule_residual_eV_A2=asr)

    res = res or _run_stage("fit_ifc", mid, body)
    res["provenance"] = provenance(settings)
    write_fc2(args.fc2, fc2, res["status"])
    if args.fc3 and fc2 is None:
        write_fc2(args.fc3, None, res["status"])
    write_json_atomic(args.out, res)
    return 0


def cmd_stability(args: argparse.Namespace) -> int:
    from .stability import assess_stability

    settings = json.loads(args.settings)
    disp = read_json(args.displace)
    up, res = _upstream(args.fit, "stability")
    mid = up["material_id"]

    def body() -> dict:
        ph = _phonopy_from(disp, args.fc2)
        st = assess_stability(ph, settings["stability_mesh_length_A"],
                              settings["stability_tolerance_THz"], settings["band_points"])
        status = "ok" if st["stable"] else "failed"
        print(f"[stability] {mid}: {'stable' if st['stable'] else st['reason']} (lowest "
              f"{st['lowest_frequency_THz']:.3f} THz)", flush=True)
        return _result(mid, "stability", status, st.pop("reason"), **st)

    res = res or _run_stage("stability", mid, body)
    res["provenance"] = provenance(settings)
    write_json_atomic(args.out, res)
    return 0


def cmd_phonons(args: argparse.Namespace) -> int:

    from .descriptors import phonon_descriptors
    from .phonons import write_arrays

    settings = json.loads(args.settings)
    disp = read_json(args.displace)
    up, res = _upstream(args.stability, "phonon_descriptors")
    mid = up["material_id"]
    mobile = args.mobile_ion
    written = False

    def body() -> dict:
        nonlocal written
        t0 = time.perf_counter()
        ph = _phonopy_from(disp, args.fc2)
        scalars, arrays = phonon_descriptors(
            ph, mobile, settings["temperatures_K"], settings["mesh_start_length_A"],
            settings["mesh_max_length_A"], settings["msd_tolerance"],
            settings["low_frequency_THz"], settings["band_points"])
        write_arrays(args.modes, arrays)
        written = True
        t_hi = max(settings["temperatures_K"])
        hot = scalars["by_temperature_K"][f"{t_hi:g}"]
        print(f"[phonons] {mid}: {mobile} MSD {hot['msd_mobile_mean_A2']:.4f} Å² at {t_hi:g} K "
              f"(mesh {scalars['mesh']}), acoustic cutoff {scalars['acoustic_cutoff_THz']:.2f} "
              f"THz, {mobile} PDOS centre {scalars['pdos_mobile_centre_THz']:.2f} THz "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
        note = scalars["mesh_convergence"][-1].get("note", "")
        return _result(mid, "phonon_descriptors", "ok", note, **scalars,
                       formula=atoms_from_dict(disp["primitive"]).get_chemical_formula(
                           mode="metal"),
                       wall_time_s=time.perf_counter() - t0)

    res = res or _run_stage("phonon_descriptors", mid, body)
    res["provenance"] = provenance(settings)
    if not written:
        _write_flagged_arrays(args.modes, res["status"])
    write_json_atomic(args.out, res)
    return 0


def cmd_phonon_figures(args: argparse.Namespace) -> int:
    from .phonons import read_arrays
    from .plots import plot_coupling_pdos, plot_msd_modes

    res = read_json(args.phonons)
    arrays = read_arrays(args.modes)
    mid, ion = res["material_id"], res["mobile_ion"]
    t_hi = float(max(arrays["temperatures_K"]))
    title = f"{mid} ({res['formula']})"
    plot_msd_modes(arrays, t_hi, f"{title}: {ion} MSD by mode, {t_hi:g} K", args.fig_msd)
    plot_coupling_pdos(arrays, res, f"{title}: {ion}–host coupling and PDOS",
                       args.fig_coupling)
    print(f"[figures] {mid}: {args.fig_msd}.png/.svg, {args.fig_coupling}.png/.svg", flush=True)
    return 0


def cmd_md(args: argparse.Namespace) -> int:
    import os

    from .calculators import get_calculator
    from .md import MDSettings, read_trajectory, run_adaptive, run_md
    from .phonons import read_fc2  # h5py only: fine in backend environments without phonopy

    settings = json.loads(args.settings)
    calc_cfg = json.loads(args.calculator)
    disp = read_json(args.displace)
    up, res = _upstream(args.stability, "md")
    mid = up["material_id"]
    model: dict = {}
    partial = Path(args.trajectory).with_suffix(".partial.h5")  # survives a killed job

    def body() -> dict:
        nonlocal model
        s = MDSettings(temperature_K=args.temperature, **{
            k: settings[k] for k in ("timestep_fs", "equilibration_steps", "production_steps",
                                     "interval", "thermostat", "friction_per_fs", "tau_fs",
                                     "seed", "max_force_eV_A", "max_temperature_factor",
                                     "min_distance_A", "initial_state")})
        loaded = get_calculator(calc_cfg["backend"], calc_cfg.get("model", ""),
                                calc_cfg.get("device", "cpu"), calc_cfg.get("dtype", "float64"))
        model = loaded.description
        atoms = atoms_from_dict(disp["supercell"])
        fc = read_fc2(args.fc2) if args.fc2 and s.initial_state == "harmonic" else None
        print(f"[md] {mid}: {len(atoms)} atoms, {args.temperature:g} K, {s.thermostat}, "
              f"{s.equilibration_steps} + {s.production_steps} steps of {s.timestep_fs} fs",
              flush=True)
        adaptive = settings.get("adaptive", {})
        if adaptive.get("enabled"):
            from .diffusion import d_avg_converged

            fit = json.loads(args.diffusion_settings)

            def converged(path):
                return d_avg_converged(
                    read_trajectory(path), args.mobile_ion, adaptive["target_rel_stderr"],
                    tuple(fit["window"]), fit["intercept"], fit["weighting"],
                    fit["min_duration_ps"])

            summary = run_adaptive(atoms, loaded.calculator, s, partial, converged,
                                   adaptive["chunk_steps"], adaptive["max_production_steps"],
                                   force_constants=fc)
        else:
            summary = run_md(atoms, loaded.calculator, s, partial, force_constants=fc)
        os.replace(partial, args.trajectory)
        print(f"[md] {mid}: done, {summary['n_frames']} frames, "
              f"{summary['steps_per_s']:.2f} steps/s", flush=True)
        return _result(mid, "md", "ok", temperature_K=args.temperature, **summary)

    res = res or _run_stage("md", mid, body)
    res["provenance"] = provenance(settings, model)
    if res["status"] != "ok":
        from .io import atomic_path

        with atomic_path(args.trajectory) as tmp:  # flagged, frame-less file
            import h5py

            with h5py.File(tmp, "w") as h5:
                h5.attrs["status"] = res["status"]
    write_json_atomic(args.out, res)
    return 0


def cmd_diffusion(args: argparse.Namespace) -> int:
    from .diffusion import analyze_trajectory
    from .md import read_trajectory
    from .phonons import write_arrays

    settings = json.loads(args.settings)
    up, res = _upstream(args.md, "diffusion")
    mid = up["material_id"]
    written = False

    def body() -> dict:
        nonlocal written
        out, arrays = analyze_trajectory(
            read_trajectory(args.trajectory), args.mobile_ion, tuple(settings["window"]),
            settings["intercept"], settings["weighting"], settings["melt_d_threshold_A2_ps"],
            settings["melt_msd_threshold_A2"], settings["min_duration_ps"])
        if args.phonons and Path(args.phonons).exists():
            ph = read_json(args.phonons)
            if ph["status"] == "ok":
                out["acoustic_cutoff_THz"] = ph["acoustic_cutoff_THz"]
                out["vdos_centre_over_acoustic_cutoff"] = (out["vdos_centre_mobile_THz"]
                                                           / ph["acoustic_cutoff_THz"])
        write_arrays(args.arrays, arrays)
        written = True
        status, reason = ("failed", out["melt_reason"]) if out["melted"] else ("ok", "")
        if out["too_short"]:
            reason = (f"run of {out['duration_ps']:.2f} ps < diffusion.min_duration_ps: D and "
                      "the melt filter are not meaningful")
        print(f"[diffusion] {mid} {up['temperature_K']:g} K: D = {out['d_avg_A2_ps']:.3e} ± "
              f"{out['d_avg_stderr_A2_ps']:.1e} Å²/ps, {args.mobile_ion} VDOS centre "
              f"{out['vdos_centre_mobile_THz']:.2f} THz {reason}", flush=True)
        return _result(mid, "diffusion", status, reason, temperature_K=up["temperature_K"],
                       **out)

    res = res or _run_stage("diffusion", mid, body)
    res["provenance"] = provenance(settings)
    if not written:
        _write_flagged_arrays(args.arrays, res["status"])
    write_json_atomic(args.out, res)
    return 0


def cmd_diffusion_figures(args: argparse.Namespace) -> int:
    from .phonons import read_arrays
    from .plots import plot_msd, plot_vdos

    res = read_json(args.diffusion)
    arrays = read_arrays(args.arrays)
    title = f"{res['material_id']}, {res['temperature_K']:g} K"
    plot_msd(arrays, res, title + ": MSD", args.fig_msd)
    plot_vdos(arrays, res, res.get("acoustic_cutoff_THz"), title + ": VDOS", args.fig_vdos)
    return 0


def cmd_dynamics(args: argparse.Namespace) -> int:
    from .dynamics import analyze_dynamics
    from .md import read_trajectory
    from .phonons import write_arrays
    from .plots import plot_dynamics

    settings = json.loads(args.settings)
    up, res = _upstream(args.md, "dynamics")
    mid = up["material_id"]

    def body() -> dict:
        t0 = time.perf_counter()
        out, arrays = analyze_dynamics(read_trajectory(args.trajectory), args.mobile_ion,
                                       settings)
        write_arrays(args.arrays, arrays)
        out["rotation_threshold"] = settings["rotation_threshold"]
        plot_dynamics(arrays, out, f"{mid}, {up['temperature_K']:g} K", args.figure)
        print(f"[dynamics] {mid} {up['temperature_K']:g} K: {', '.join(out['analyses'])} "
              f"in {time.perf_counter() - t0:.1f} s; units {out['polyanions'] or 'none'}",
              flush=True)
        return _result(mid, "dynamics", "ok", temperature_K=up["temperature_K"], **out)

    res = res or _run_stage("dynamics", mid, body)
    res["provenance"] = provenance(settings)
    if res["status"] != "ok":
        _write_flagged_arrays(args.arrays, res["status"])
        plot_dynamics({}, res, f"{mid}: {res['status']} {res.get('reason', '')}", args.figure)
    write_json_atomic(args.out, res)
    return 0


def cmd_arrhenius(args: argparse.Namespace) -> int:
    from .arrhenius import arrhenius, extrapolate, nernst_einstein_S_cm
    from .plots import plot_arrhenius

    disp = read_json(args.displace)
    rows = [read_json(p) for p in args.diffusion_results]
    mid = rows[0]["material_id"]
    usable = [r for r in rows if r["status"] == "ok" and r["d_avg_A2_ps"] > 0]
    sc = atoms_from_dict(disp["supercell"])
    n_mobile = sum(1 for s in sc.get_chemical_symbols() if s == args.mobile_ion)
    density = n_mobile / sc.get_volume()
    out = {"mobile_ion_density_per_A3": density,
           "temperatures_K": [r["temperature_K"] for r in usable],
           "d_avg_A2_ps": [r["d_avg_A2_ps"] for r in usable]}
    fit = None
    if len(usable) >= 2:
        try:
            fit = arrhenius(out["temperatures_K"], out["d_avg_A2_ps"],
                            [r["d_avg_stderr_A2_ps"] for r in usable])
            d300 = extrapolate(fit, 300.0)
            out.update(fit, d_300K_A2_ps=d300,
                       sigma_300K_S_cm=nernst_einstein_S_cm(d300, density, 300.0))
            res = _result(mid, "arrhenius", "ok", **out)
        except ValueError as exc:
            res = _result(mid, "arrhenius", "failed", str(exc), **out)
    else:
        res = _result(mid, "arrhenius", "ok",
                      f"{len(usable)} usable temperature(s): no Ea (needs >= 2)", **out)
    for r in usable:
        out[f"sigma_{r['temperature_K']:g}K_S_cm"] = nernst_einstein_S_cm(
            r["d_avg_A2_ps"], density, r["temperature_K"])
    res.update({k: v for k, v in out.items() if k.startswith("sigma_")})
    plot_arrhenius(out["temperatures_K"], out["d_avg_A2_ps"],
                   [r["d_avg_stderr_A2_ps"] for r in usable], fit, f"{mid}: Arrhenius",
                   args.figure)
    res["provenance"] = provenance({})
    write_json_atomic(args.out, res)
    print(f"[arrhenius] {mid}: " + (f"Ea = {fit['ea_eV']:.3f} ± {fit['ea_stderr_eV']:.3f} eV"
                                     if fit else res["reason"]), flush=True)
    return 0


def _write_poscar(res: dict, path: str) -> None:
    """A VASP POSCAR of the relaxed cell for people and other codes (empty if none)."""
    from ase.io import write

    from .io import atomic_path

    with atomic_path(path) as tmp:
        if "structure" in res and res["status"] == "ok":
            write(tmp, atoms_from_dict(res["structure"]), format="vasp", direct=True, sort=False)
        else:
            Path(tmp).write_text(f"# no relaxed structure: {res['status']}: {res['reason']}\n")


#: subcommand → (function, help, required options, optional options with defaults).
#: Options are strings; ``--temperature`` is parsed as a float and ``--diffusion-results``
#: takes one or more files.
COMMANDS = {
    "intake": (cmd_intake, "read and triage one structure",
               ["--id", "--source", "--settings", "--out"], {}),
    "relax": (cmd_relax, "relax one material with the configured MLP",
              ["--input", "--settings", "--calculator", "--out"], {"--structure-out": None}),
    "displace": (cmd_displace, "supercell and random displacements",
                 ["--input", "--settings", "--out"], {}),
    "forces": (cmd_forces, "MLP forces on all displaced supercells",
               ["--input", "--calculator", "--forceset", "--out"], {}),
    "fit-ifc": (cmd_fit_ifc, "force constants with pheasy",
                ["--displace", "--forceset", "--forces-result", "--settings", "--fc2", "--out"],
                {"--python": "", "--fc3": ""}),
    "stability": (cmd_stability, "dynamic stability screen",
                  ["--displace", "--fit", "--fc2", "--settings", "--out"], {}),
    "phonons": (cmd_phonons, "phonon descriptors",
                ["--displace", "--stability", "--fc2", "--settings", "--mobile-ion", "--out",
                 "--modes"], {}),
    "phonon-figures": (cmd_phonon_figures, "figures of the phonon descriptors (base names)",
                       ["--phonons", "--modes", "--fig-msd", "--fig-coupling"], {}),
    "md": (cmd_md, "NVT MD with the MLP (resumable)",
           ["--displace", "--stability", "--temperature", "--settings", "--calculator",
            "--trajectory", "--out"],
           {"--diffusion-settings": "{}", "--mobile-ion": "Na", "--fc2": ""}),
    "diffusion": (cmd_diffusion, "MSD, D, melt filter and VDOS of one trajectory",
                  ["--md", "--trajectory", "--settings", "--mobile-ion", "--arrays", "--out"],
                  {"--phonons": ""}),
    "diffusion-figures": (cmd_diffusion_figures, "MSD(t) and VDOS figures (base names)",
                          ["--diffusion", "--arrays", "--fig-msd", "--fig-vdos"], {}),
    "dynamics": (cmd_dynamics, "optional g(r), van Hove, reorientation, tetrahedral angles",
                 ["--md", "--trajectory", "--settings", "--mobile-ion", "--arrays", "--figure",
                  "--out"], {}),
    "arrhenius": (cmd_arrhenius, "Ea, D0 and conductivity from D(T)",
                  ["--displace", "--diffusion-results", "--mobile-ion", "--figure", "--out"], {}),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="phonion", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (func, text, required, optional) in COMMANDS.items():
        p = sub.add_parser(name, help=text)
        for opt in required:
            kind = {"--temperature": {"type": float}, "--diffusion-results": {"nargs": "+"}}
            p.add_argument(opt, required=True, **kind.get(opt, {}))
        for opt, default in optional.items():
            p.add_argument(opt, default=default)
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
