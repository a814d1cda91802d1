"""Commands of the structure stages: intake, relaxation (MLP or DFT engine), structure and
elastic descriptors."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import formats
from ..runner import Context, run_stage
from .common import dft_run_setup, load_calculator, settings_of


def intake(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from ..intake import read_structure, triage_and_describe
        from ..provenance import file_sha256
        from ..runner import run_guarded

        out = {"source": str(a.source), "source_sha256": file_sha256(a.source)}
        atoms = read_structure(a.source)
        # spglib and ASE see the structure in a child process: a crash there is a reason
        out.update(run_guarded(triage_and_describe, atoms, ctx.settings,
                               what=f"the structure of {Path(a.source).name}"))
        ctx.log(f"{out['primitive']['formula']} {out['primitive']['spacegroup']} accepted")
        return out

    # a material screened again with the fine-tuned model waits for it: no model, no screen
    # (and for the base material's relaxation, whose structure it reads)
    upstream = {k: v for k, v in (("finetune", a.finetune), ("relax", a.base_relax)) if v}
    return run_stage("intake", body, a.out, upstream, settings=settings_of(a), mid=a.id)


def relax(a: argparse.Namespace) -> int:
    partial = Path(a.out).with_suffix(".partial.json")  # survives the job: a later run with
    # a larger relax.max_steps continues from the last structure instead of starting over

    def body(ctx: Context) -> dict:
        from ..calculators import check_elements
        from ..relax import relax as run_relax
        from ..relax import restart_key, verdict

        s = ctx.settings
        atoms = formats.atoms_from_dict(ctx.upstream["intake"]["structure"])
        key = restart_key(ctx.upstream["intake"]["structure"], s)
        start, before = None, 0
        if partial.exists():
            try:
                last = formats.read_json(partial)
                if last.get("key") == key and last["n_steps"] < s.max_steps:
                    start, before = formats.atoms_from_dict(last["structure"]), last["n_steps"]
            except (formats.DamagedFile, KeyError):
                pass
        loaded = load_calculator(ctx, a.device)
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

    return run_stage("relax", body, a.out, {"intake": a.intake}, settings_of(a),
                     {"poscar": a.poscar})


def dft_relax(a: argparse.Namespace) -> int:
    """The ``relax`` stage with a DFT engine (``relax.engine: vasp | cp2k``): the same result
    as the MLP relaxation, from one engine run in ``--workdir`` (reused when it finished for
    the same request)."""

    def body(ctx: Context) -> dict:
        from ase import Atoms

        from ..dft.relax import run_relax
        from ..errors import InputRejected
        from ..relax import compare_symmetry, symmetry_change, symmetry_verdict

        s = ctx.settings
        atoms = formats.atoms_from_dict(ctx.upstream["intake"]["structure"])
        engine, protocol, run_protocol, kwargs = dft_run_setup(s, a)
        relaxed, record = run_relax(engine, protocol, atoms, a.workdir, kwargs, log=ctx.log,
                                    run_protocol=run_protocol)
        path_steps = 0
        if "path" in ctx.outputs:  # every step with its DFT forces: fine-tuning data
            try:
                path = engine.read_relax_path(a.workdir)
            except InputRejected as exc:
                ctx.log(f"no relaxation path kept: {exc}")
            else:
                formats.write_arrays(ctx.outputs["path"], {
                    "numbers": Atoms(path["symbols"]).numbers,
                    **{k: path[k] for k in ("positions_A", "cells_A", "forces_eV_A",
                                            "energies_eV", "steps")}})
                path_steps = len(path["steps"])
                ctx.log(f"relaxation path: {path_steps} steps with DFT forces kept")
        sg0, sg1, superg = compare_symmetry(atoms, relaxed, s.symprec)
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
                "symmetry_change": symmetry_change(sg0, sg1, superg),
                "workdir": str(a.workdir), "relax_path_steps": path_steps, **record,
                "structure": formats.atoms_to_dict(relaxed)}

    return run_stage("relax", body, a.out, {"intake": a.intake}, settings_of(a),
                     {"poscar": a.poscar, "path": a.path})


def structure_descriptors(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from pymatgen.core import Structure

        from ..structure_descriptors import structure_descriptors as describe

        s = ctx.settings
        out = describe(Structure.from_file(a.poscar), s.mobile_ion, s.symprec)
        ctx.log(f"{out['formula']} {out['spacegroup']}: {s.mobile_ion} CN "
                f"{out['descriptors']['mobile_cn']:.2f}")
        return out

    return run_stage("structure_descriptors", body, a.out, {"relax": a.relax}, settings_of(a))


def elastic(a: argparse.Namespace) -> int:
    def body(ctx: Context) -> dict:
        from ..calculators import check_elements
        from ..elastic import elastic as run_elastic

        s = ctx.settings
        atoms = formats.atoms_from_dict(ctx.upstream["relax"]["structure"])
        loaded = load_calculator(ctx, a.device)
        check_elements(loaded, atoms.get_chemical_symbols())
        out = run_elastic(atoms, loaded.calculator, s)
        d = out["descriptors"]
        if not out["mechanically_stable"]:  # a finding: no moduli, the chain goes on
            ctx.log(f"mechanically unstable: {out['reason']}")
        else:
            ctx.log(f"K = {d['bulk_modulus_GPa']:.1f} GPa, G = {d['shear_modulus_GPa']:.1f} "
                    f"GPa, θ_D = {d['debye_temperature_K']:.0f} K")
        return out

    return run_stage("elastic", body, a.out, {"relax": a.relax}, settings_of(a))
