"""Commands of the MD stages: MLP MD, its diffusion and dynamics analyses (also standalone,
on any trajectory), and the Arrhenius fit over temperatures."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from .. import formats
from ..errors import ConfigError
from ..runner import Context, run_stage
from ..settings import SETTINGS
from .common import load_calculator, load_member, settings_of


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


def md_batch(a: argparse.Namespace) -> int:
    """``md.engine: torch_sim``: every temperature of one material as one batch
    (:mod:`phonion.md_batch`); one ``md`` result and trajectory per temperature, as the
    ``md`` command writes them. A run that diverges fails alone. With ``--pool`` (the
    record of the material's pool, ``md.batch_materials`` > 1) the runs the pool finished
    are adopted (:func:`phonion.md_pool.adopt`) and only the others run here."""
    from ..md_batch import Member, batch_model, engine_problem, run_batch
    from ..md_pool import adopt, partial_of

    temps = [float(t) for t in a.temperatures_K]
    if not (len(temps) == len(a.trajectory) == len(a.out)):
        raise SystemExit("md_batch: one --trajectory and one --out per --temperatures-K")
    base = SETTINGS["md"].from_json(a.settings, temperature_K=temps[0])
    outcome: dict = {}
    models: dict = {}  # the model of each adopted run (its pool's)
    ran: list = []

    def run_all(ctx: Context) -> None:
        """The batch, run once (by the first temperature whose upstream is ok): every run
        gets its summary or the exception that stopped it."""
        ran.append(True)
        try:
            adopt_or_run(ctx)
        except Exception as exc:  # noqa: BLE001 - each run not adopted reports it
            for T in temps:
                outcome.setdefault(f"{T:g}K", exc)

    def adopt_or_run(ctx: Context) -> None:
        why = engine_problem(base)
        if why:
            raise ConfigError(why)
        atoms = formats.atoms_from_dict(ctx.upstream["displace"]["supercell"])
        record = None
        if a.pool and Path(a.pool).exists():
            try:
                record = formats.read_json(a.pool)
            except formats.DamagedFile as exc:  # then every run runs here
                ctx.log(f"pool record unreadable ({exc}): running the runs here")
        members = []
        for T, tr in zip(temps, a.trajectory, strict=True):
            s = dataclasses.replace(base, temperature_K=T)
            took = adopt(record, f"{T:g}K", s, atoms, tr)
            if took is None:
                members.append((T, s, tr))
                continue
            if isinstance(took, dict):
                models[f"{T:g}K"] = took.pop("model")
            outcome[f"{T:g}K"] = took
        if record and len(members) < len(temps):
            ctx.log(f"adopted {len(temps) - len(members)} run(s) from pool {record['pool']} "
                    f"({record['runs_in_batch']} runs in its batch)")
        if not members:
            return
        model, ctx.model = batch_model(base.backend, base.model, a.device, base.modal)
        from ..calculators import check_elements

        check_elements(model.loaded, atoms.get_chemical_symbols())
        fc = formats.read_fc2(a.fc2) if base.initial_state == "harmonic" else None
        runs = [Member(f"{T:g}K", atoms, s, partial_of(tr), fc)
                for T, s, tr in members]
        how = "batched" if getattr(model, "batched", False) else "system by system"
        ctx.log(f"{len(atoms)} atoms, {', '.join(m.key for m in runs)} as one batch "
                f"(torch_sim, {how} on {a.device}), {base.equilibration_steps} + "
                f"{base.production_steps} steps of {base.timestep_fs} fs")
        outcome.update(run_batch(runs, model))
        outcome["model"] = ctx.model

    rc = 0
    for T, tr, out in zip(temps, a.trajectory, a.out, strict=True):
        s = dataclasses.replace(base, temperature_K=T)

        def body(ctx: Context, T=T, tr=tr) -> dict:
            if not ran:
                run_all(ctx)
            ctx.model = models.get(f"{T:g}K") or outcome.get("model")
            res = outcome[f"{T:g}K"]
            if isinstance(res, Exception):
                raise res
            _finish(partial_of(tr), Path(tr), bool(a.pool))
            rate = res["steps_per_s"]
            ctx.log(f"{T:g} K: {res['n_frames']} frames"
                    + (f", {rate:.2f} steps/s" if rate else " (already complete)"))
            return {"temperature_K": T, **res}

        rc |= run_stage("md", body, out, {"displace": a.displace, "stability": a.stability},
                        s, {"trajectory": tr})
    return rc


def _finish(partial: Path, trajectory: Path, keep_checkpoint: bool) -> None:
    """Give a finished run its trajectory's name. Pooled (``keep_checkpoint``), the
    checkpoint file stays as a hard link (no copy): a pool that reruns, or this job
    rerun without a pool, finds the run complete instead of running it again."""
    if keep_checkpoint:
        try:
            trajectory.unlink(missing_ok=True)
            os.link(partial, trajectory)
            return
        except OSError:  # no hard links here: rename, as unpooled
            pass
    os.replace(partial, trajectory)


def md_pool(a: argparse.Namespace) -> int:
    """``md.batch_materials`` > 1: every temperature of several materials as one batch
    (:func:`phonion.md_pool.run_pool`; ``--settings``: each material's md settings file;
    ``--out``: each material's pool record). Never a stage result: each material's
    ``md_batch`` job adopts its runs."""
    from ..md_pool import run_pool

    temps = [float(t) for t in a.temperatures_K]
    n, k = len(a.out), len(temps)
    if not (len(a.displace) == len(a.stability) == len(a.fc2) == len(a.settings) == n
            and len(a.trajectory) == n * k):
        raise SystemExit("md_pool: one --displace, --stability, --fc2, --settings and --out "
                         "per material, one --trajectory per material and temperature")
    return run_pool(a.pool, a.displace, a.stability, a.fc2, a.settings, temps, a.trajectory,
                    a.out, a.device)


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
        traj = formats.read_trajectory(a.trajectory)
        out, arrays = analyze_trajectory(traj, ctx.settings, cutoff)
        formats.write_arrays(ctx.outputs["arrays"], arrays)
        T = ctx.upstream["md"]["temperature_K"]
        if a.fc2 and ctx.settings.harmonic_comparison:
            out.update(_harmonic_vs_md(a, out, traj, T))
        title = f"{ctx.mid}, {T:g} K"
        plot_msd(arrays, out, title + ": MSD", ctx.outputs["figures"] / "msd")
        plot_vdos(arrays, out, cutoff, title + ": VDOS", ctx.outputs["figures"] / "vdos")
        _log_diffusion(ctx, f"{T:g} K", out)
        return {"temperature_K": T, **out}

    return run_stage("diffusion", body, a.out, {"md": a.md, "stability": a.stability},
                     settings_of(a), {"arrays": a.arrays, "figures": a.figures})


def _harmonic_vs_md(a: argparse.Namespace, out: dict, traj: dict, T: float) -> dict:
    """Seed 000 §3.1 (Fig. S9): the MD's vibrational mobile-ion MSD beside the classical
    harmonic MSD of the same supercell's modes (:func:`~phonion.phonon_descriptors.
    supercell_msd`, from the fitted fc2); their ratio ``msd_md_over_harmonic`` is 1 for a
    harmonic crystal, so what departs from 1 is anharmonicity."""
    import numpy as np

    from ..diffusion import md_vibrational_msd
    from ..harmonic import phonopy_from_displace
    from ..phonon_descriptors import supercell_msd

    ph = phonopy_from_displace(formats.read_result(a.displace), formats.read_fc2(a.fc2))
    mobile = np.array(ph.primitive.symbols) == out["mobile_ion"]
    cell = float(supercell_msd(ph, [T], mobile)[0])
    md = md_vibrational_msd(traj, out)
    res = {"msd_harmonic_supercell_classical_mobile_A2": cell,
           "msd_md_vibrational_mobile_A2": md,
           "msd_md_over_harmonic": None if md is None or cell <= 0 else md / cell}
    if out.get("too_short"):
        # about its own time average, a run shorter than a few periods of the slow modes
        # hides most of their amplitude (to 26 % at 2 THz in 0.15 ps): no ratio then
        res.update(msd_md_over_harmonic=None, msd_md_over_harmonic_reason=(
            f"run of {out['duration_ps']:.2f} ps < diffusion.min_duration_ps: the slow "
            "modes' amplitude is not sampled"))
    return res


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
        from ..plots_dynamics import plot_dynamics

        T = ctx.upstream["md"]["temperature_K"]
        traj = formats.read_trajectory(a.trajectory)
        out, arrays = analyze_dynamics(traj, ctx.settings)
        formats.write_arrays(ctx.outputs["arrays"], arrays)
        plot_dynamics(arrays, out, f"{ctx.mid}, {T:g} K", ctx.outputs["figures"] / "dynamics")
        if "density" in ctx.outputs:
            from ..density import write_chgcar
            from ..plots_dynamics import plot_density

            write_chgcar(ctx.outputs["density"], traj, arrays["density/P_A-3"])
            plot_density(arrays, out, f"{ctx.mid}, {T:g} K: {out['mobile_ion']} density",
                         ctx.outputs["figures"] / "density")
        ctx.log(f"{T:g} K: {', '.join(out['analyses'])}; units {out['polyanions'] or 'none'}")
        return {"temperature_K": T, **out}

    return run_stage("dynamics", body, a.out, {"md": a.md}, settings_of(a),
                     {"arrays": a.arrays, "figures": a.figures, "density": a.density})


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


def md_committee(a: argparse.Namespace) -> int:
    """The second model of ``stability_recheck`` on frames of one MD run
    (:mod:`phonion.md_committee`)."""

    def body(ctx: Context) -> dict:
        from ..md_committee import committee_on_frames_all

        frames = formats.read_frames_with_forces(a.trajectory, ctx.settings.n_frames)
        if frames["forces_eV_A"] is None:
            return {"status": "failed", "reason": (
                "the trajectory keeps no forces (written before phonion kept them): delete "
                "it to rerun the MD, or set stability_recheck.md_frames: 0")}
        snap = formats.read_result(a.recheck) if a.recheck else {}
        s = ctx.settings
        members = [(f"{s.backend}:{s.model}", load_calculator(ctx, a.device).calculator)]
        members += [(f"{s.backend}:{spec}", load_member(s, spec, a.device))
                    for spec in s.further_models]
        return committee_on_frames_all(frames, members, s, ctx.log,
                                       snap.get("force_disagreement_relative"))

    return run_stage("md_committee", body, a.out, {"md": a.md}, settings_of(a))
