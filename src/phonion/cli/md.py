"""Commands of the MD stages: MLP MD, its diffusion and dynamics analyses (also standalone,
on any trajectory), and the Arrhenius fit over temperatures."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import formats
from ..runner import Context, run_stage
from .common import load_calculator, settings_of


def md(a: argparse.Namespace) -> int:
    s = settings_of(a, temperature_K=float(a.temperature_K))

    def body(ctx: Context) -> dict:
        import os

        from ..md import run_adaptive, run_md

        loaded = load_calculator(ctx, a.device)
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
        from ..diffusion import analyze_trajectory
        from ..plots import plot_msd, plot_vdos

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
                     settings_of(a), {"arrays": a.arrays, "figures": a.figures})


def diffusion_standalone(a: argparse.Namespace) -> int:
    """``phonion diffusion --trajectory FILE --out DIR``: the diffusion stage on any
    trajectory ASE reads, without the rest of the chain; writes DIR/diffusion.json (the
    workflow's format), DIR/diffusion.h5 and DIR/figures/."""
    out_dir = Path(a.out)
    overrides = {"mobile_ion": a.mobile_ion} if a.mobile_ion else {}
    settings = settings_of(a, **overrides)

    def body(ctx: Context) -> dict:
        from ..diffusion import analyze_trajectory
        from ..plots import plot_msd, plot_vdos

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
        from ..dynamics import analyze_dynamics
        from ..plots import plot_dynamics

        T = ctx.upstream["md"]["temperature_K"]
        out, arrays = analyze_dynamics(formats.read_trajectory(a.trajectory), ctx.settings)
        formats.write_arrays(ctx.outputs["arrays"], arrays)
        plot_dynamics(arrays, out, f"{ctx.mid}, {T:g} K", ctx.outputs["figures"] / "dynamics")
        ctx.log(f"{T:g} K: {', '.join(out['analyses'])}; units {out['polyanions'] or 'none'}")
        return {"temperature_K": T, **out}

    return run_stage("dynamics", body, a.out, {"md": a.md}, settings_of(a),
                     {"arrays": a.arrays, "figures": a.figures})


def arrhenius(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from ..arrhenius import arrhenius_stage
        from ..plots import plot_arrhenius

        out = arrhenius_stage(list(ctx.upstream.values()), ctx.settings)
        plot_arrhenius(out, f"{ctx.mid}: Arrhenius", ctx.outputs["figures"] / "arrhenius")
        ctx.log(f"Ea = {out['ea_eV']:.3f} ± {out['ea_stderr_eV']:.3f} eV" if "ea_eV" in out
                else out["reason"])
        return out

    upstream = {f"diffusion_{i}": p for i, p in enumerate(a.diffusion)}
    return run_stage("arrhenius", body, a.out, upstream, settings_of(a),
                     {"figures": a.figures}, gate="any")
