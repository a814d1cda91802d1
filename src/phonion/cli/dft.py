"""Commands of the DFT stages: forces on the MLP's snapshots, AIMD, the MLP-vs-DFT and
MLP-vs-AIMD validations, the benchmark of further MLPs, and the campaign tables of them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import formats
from ..runner import Context, run_stage
from .common import dft_run_setup, settings_of


def dft_forces(a: argparse.Namespace) -> int:
    """DFT static forces on the displaced supercells of ``displace.json`` (the MLP saw the
    same ones), run by run in ``--workdir``; finished runs are reused on a rerun."""

    def body(ctx: Context) -> dict:
        import numpy as np

        from ..dft.forces import static_forces

        s, disp = ctx.settings, ctx.upstream["displace"]
        engine, protocol, run_protocol, kwargs = dft_run_setup(s, a)
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

    return run_stage("dft_forces", body, a.out, {"displace": a.displace}, settings_of(a),
                     {"forceset": a.forceset})


def dft_validation(a: argparse.Namespace) -> int:
    """MLP against DFT on the same snapshots: force RMSE, fc2 RMSE, stability verdicts,
    mobile-ion MSD ratio, band overlay (seed 000 §2.2, Fig. S8)."""

    def body(ctx: Context) -> dict:
        from ..dft_validation import compare
        from ..plots import plot_band_overlay

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
                     settings_of(a), {"arrays": a.arrays, "figures": a.figures})


def aimd(a: argparse.Namespace) -> int:
    """NVT AIMD of one material at one temperature in segments that continue across
    wall-time limits; the trajectory in the MLP MD's format."""
    s = settings_of(a, temperature_K=float(a.temperature_K))

    def body(ctx: Context) -> dict:
        from ..dft.aimd import run_aimd

        engine, protocol, run_protocol, kwargs = dft_run_setup(s, a)
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
        from ..aimd_validation import compare
        from ..plots import plot_msd_overlay

        T = ctx.upstream["aimd"]["temperature_K"]
        mlp_traj = formats.read_trajectory(a.mlp_trajectory) if a.mlp_trajectory else None
        out, arrays = compare(formats.read_trajectory(a.trajectory), ctx.upstream["diffusion"],
                              formats.read_arrays(a.mlp_arrays), ctx.settings,
                              mlp_traj=mlp_traj)
        formats.write_arrays(ctx.outputs["arrays"], arrays)
        engine = ctx.upstream["aimd"]["engine"]
        plot_msd_overlay(arrays, out, ("MLP MD", f"AIMD ({engine})"),
                         f"{ctx.mid}, {T:g} K: {ctx.settings.mobile_ion} MSD, MLP vs AIMD",
                         ctx.outputs["figures"] / "msd_mlp_aimd")
        if mlp_traj is not None:
            from ..plots_dynamics import plot_structure_overlay

            plot_structure_overlay(arrays, out, ("MLP MD", f"AIMD ({engine})"),
                                   f"{ctx.mid}, {T:g} K: MLP vs AIMD",
                                   ctx.outputs["figures"] / "structure_mlp_aimd")
        ratio = out["d_ratio_mlp_aimd"]
        ctx.log((f"D ratio MLP/AIMD {ratio:.2f}" if ratio else out["reason"])
                + f"; MSD ratio at {out['common_lag_ps']:.3f} ps "
                f"{out['msd_ratio_mlp_aimd']:.3f}")
        return {"temperature_K": T, "engine": engine, **out}

    return run_stage("aimd_validation", body, a.out,
                     {"aimd": a.aimd, "diffusion": a.mlp_diffusion}, settings_of(a),
                     {"arrays": a.arrays, "figures": a.figures})


def mlp_benchmark(a: argparse.Namespace) -> int:
    """One more MLP against a validated material's DFT forces (:mod:`phonion.mlp_benchmark`)."""
    from ..settings import DftValidationSettings

    def body(ctx: Context) -> dict:
        from ..calculators import get_calculator
        from ..mlp_benchmark import benchmark

        entry = json.loads(a.model_json)
        loaded = get_calculator(entry["backend"], entry["model"], a.device, entry["dtype"],
                                entry["modal"])
        ctx.model = loaded.description
        name = entry.get("label") or ":".join(
            x for x in (entry["backend"], entry["model"], entry["modal"]) if x)
        out = benchmark(ctx.upstream["displace"], formats.read_forceset(a.dft_forceset),
                        loaded.calculator, name, ctx.settings, log=ctx.log)
        return {**out, "engine": ctx.upstream["dft_forces"]["engine"]}

    return run_stage("mlp_benchmark", body, a.out,
                     {"displace": a.displace, "dft_forces": a.dft_forces},
                     DftValidationSettings.from_json(a.settings))


def mlp_benchmark_table(a: argparse.Namespace) -> int:
    """results/campaign/mlp_benchmark.csv and its bar chart (not a stage)."""
    from ..campaign.validation import benchmark_table
    from ..plots import plot_mlp_benchmark

    rows, summary = benchmark_table([formats.read_result(p) for p in a.results])
    for frame, path in ((rows, a.csv), (summary, a.summary)):
        with formats.atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    plot_mlp_benchmark(summary, str(Path(a.figure).with_suffix("")))
    print(f"{len(rows)} rows, {len(summary)} models -> {a.csv}, {a.summary}, {a.figure}")
    return 0


def validation_table(a: argparse.Namespace) -> int:
    """results/campaign/validation.csv from the dft_validation results (not a stage)."""
    from ..campaign.validation import validation_table as table

    frame = table([formats.read_result(p) for p in a.results])
    with formats.atomic_path(a.csv) as tmp:
        frame.to_csv(tmp, index=False)
    print(f"{len(frame)} rows -> {a.csv}")
    return 0


def finetune(a: argparse.Namespace) -> int:
    """Fine-tune the campaign model on the DFT forces of the validated materials
    (:mod:`phonion.finetune`); a material whose DFT run failed is left out with its reason."""

    def body(ctx: Context) -> dict:
        from ..finetune import dft_frames, relax_frames
        from ..finetune import finetune as run
        from ..plots import plot_finetune

        s = ctx.settings
        wanted = set(s.materials)
        forcesets, excluded = {}, {}
        for mid, path in zip(ctx.upstream, a.dft_forceset, strict=True):
            res = ctx.upstream[mid]
            if wanted and mid not in wanted:
                continue
            if res["status"] != "ok":
                excluded[mid] = f"dft_forces {res['status']}: {res.get('reason', '')}".strip()
                continue
            forcesets[mid] = formats.read_forceset(path)
        for mid, why in excluded.items():
            ctx.log(f"left out {mid}: {why}")
        aimd_paths = [p for p in (a.aimd_trajectories or []) if p]
        if s.aimd_frames and aimd_paths:
            from ..finetune import aimd_forcesets

            # results/materials/<id>/aimd/<T>K/trajectory.h5 -> "<id>@aimd<T>K"
            paths = {f"{Path(p).parents[2].name}@aimd{Path(p).parent.name}": p
                     for p in aimd_paths if Path(p).parents[2].name in forcesets}
            more = aimd_forcesets(paths, s.aimd_frames, ctx.log)
            if more:
                ctx.log(f"{sum(len(f.displacements_A) for f in more.values())} AIMD frames "
                        f"of {len(more)} run(s) added")
            forcesets = {**forcesets, **more}
        frames = dft_frames(forcesets)
        relax_paths = [p for p in (a.relax_paths or []) if p]
        if s.relax_frames and relax_paths:
            # results/materials/<id>/relax/relax_path.h5 -> "<id>@relax"
            paths = {f"{Path(p).parents[1].name}@relax": p for p in relax_paths
                     if Path(p).parents[1].name in forcesets}
            more_frames = relax_frames(paths, s.relax_frames, ctx.log)
            if more_frames:
                ctx.log(f"{len(more_frames)} DFT relaxation steps added")
            frames += more_frames
        out, arrays = run(frames, s, a.model_out, a.device, log=ctx.log)
        if arrays:
            formats.write_arrays(ctx.outputs["arrays"], arrays)
            plot_finetune(arrays, out, str(Path(a.figures) / "finetune"))
            ctx.model = out["base_model"]
        return {**out, "excluded": excluded}

    # results/materials/<id>/dft_forces/dft_forces.json: the id is the folder's name
    ups = {Path(p).parent.parent.name: p for p in a.dft_forces}
    return run_stage("finetune", body, a.out, ups, settings_of(a),
                     {"model": a.model_out, "arrays": a.arrays, "figures": a.figures},
                     mid="campaign", gate="any")
