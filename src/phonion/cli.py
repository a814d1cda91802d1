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


def _write_poscar(res: dict, path: str) -> None:
    """A VASP POSCAR of the relaxed cell for people and other codes (empty if none)."""
    from ase.io import write

    from .io import atomic_path

    with atomic_path(path) as tmp:
        if "structure" in res and res["status"] == "ok":
            write(tmp, atoms_from_dict(res["structure"]), format="vasp", direct=True, sort=False)
        else:
            Path(tmp).write_text(f"# no relaxed structure: {res['status']}: {res['reason']}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="phonion", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("intake", help="read and triage one structure")
    p.add_argument("--id", required=True)
    p.add_argument("--source", required=True, type=Path)
    p.add_argument("--settings", required=True, help="JSON: mobile_ion, max_atoms, ...")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_intake)

    p = sub.add_parser("relax", help="relax one material with the configured MLP")
    p.add_argument("--input", required=True, help="intake result JSON")
    p.add_argument("--settings", required=True, help="JSON of the relax config section")
    p.add_argument("--calculator", required=True, help="JSON: backend, model, device, dtype")
    p.add_argument("--out", required=True)
    p.add_argument("--structure-out", default=None, help="also write the relaxed POSCAR here")
    p.set_defaults(func=cmd_relax)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
