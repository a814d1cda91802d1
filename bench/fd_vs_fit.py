"""phonion's phonon verdicts against phonopy finite displacements with the same model on the
same supercell, over real low-symmetry compounds and two offline models (issue 23).

For each structure (tests/data/structures, 4-40 atoms in the primitive cell) and model:

1. phonion's stage commands as the workflow runs them, each its own process, default
   settings but the model and the mobile ion (the first of MANIFEST.tsv's mobile_ions):
   intake -> relax -> displace -> forces -> fit_ifc -> stability (with its second look);
2. the same relaxation without the symmetry constraint (``relax.fix_symmetry: false``,
   spglib 0.01 Å before/after): would the old default have stopped the material?
3. the reference: phonopy finite displacements (0.01 Å, ± where symmetry needs) with the
   same model on the same supercell (phonion.fd_check), both fc2 through the same screen
   and the same converged-mesh mobile-ion MSD at 300 and 800 K.

One JSON line per structure and model (``--out``, appended):

    OMP_NUM_THREADS=1 python bench/fd_vs_fit.py --models 7net-0 7net-mf-0:PBE \\
        --out bench/fd_vs_fit.jsonl [IDS ...]

``bench/fd_vs_fit_table.py`` turns the lines into the table of docs/phonons.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STRUCTURES = ROOT / "tests/data/structures"


def manifest() -> dict[str, dict]:
    with open(STRUCTURES / "MANIFEST.tsv") as fh:
        return {r["id"]: r for r in csv.DictReader(fh, delimiter="\t")}


def config(model: str, ion: str, **sections) -> dict:
    from snakemake.utils import validate

    name, _, modal = model.partition(":")
    cfg = {"structures": {"folder": "x"}, "mobile_ion": ion,
           "calculator": {"backend": "sevenn", "model": name, "modal": modal}, **sections}
    validate(cfg, str(ROOT / "workflow/schemas/config.schema.yaml"))
    return cfg


def run(stage: str, cfg: dict, args: list, log: Path) -> float:
    from phonion.settings import stage_settings

    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "phonion", stage, "--settings",
           stage_settings(stage, cfg).to_json(), *map(str, args)]
    with open(log, "a") as fh:
        subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    return time.perf_counter() - t0


def measure(sid: str, model: str, work: Path, phonons: dict | None = None) -> dict:
    from phonion.calculators import get_calculator
    from phonion.fd_check import compare, finite_displacement_phonopy
    from phonion.formats import read_fc2, read_result
    from phonion.harmonic import phonopy_from_displace
    from phonion.settings import FdCheckSettings

    row = manifest()[sid]
    ion = row["mobile_ions"].split(",")[0]
    cfg = config(model, ion, **({"phonons": phonons} if phonons else {}))
    w = {s: work / f"{s}.json" for s in ("intake", "relax", "relax_free", "displace", "forces",
                                          "fit_ifc", "stability")}
    log = work / "log.txt"
    out: dict = {"structure": sid, "model": model, "mobile_ion": ion,
                 "space_group": row["space_group_symbol"], "system": row["crystal_system"],
                 "atoms_primitive": int(row["atoms_primitive"]), "wall_s": {}}
    steps = [
        ("intake", cfg, ["--id", sid, "--source", STRUCTURES / f"{sid}.cif", "--out",
                         w["intake"]]),
        ("relax", cfg, ["--intake", w["intake"], "--poscar", work / "POSCAR", "--out",
                        w["relax"]]),
        ("displace", cfg, ["--relax", w["relax"], "--out", w["displace"]]),
        ("forces", cfg, ["--displace", w["displace"], "--forceset", work / "forces.h5",
                         "--out", w["forces"]]),
        ("fit_ifc", cfg, ["--displace", w["displace"], "--forces", w["forces"], "--forceset",
                          work / "forces.h5", "--fc2", work / "fc2.hdf5", "--out",
                          w["fit_ifc"]]),
        ("stability", cfg, ["--displace", w["displace"], "--fit-ifc", w["fit_ifc"], "--fc2",
                            work / "fc2.hdf5", "--figures", work / "figures", "--out",
                            w["stability"]]),
    ]
    for stage, c, args in steps:
        out["wall_s"][stage] = run(stage, c, args, log)
        res = read_result(w[stage])
        out[stage] = {"status": res["status"], "reason": res.get("reason", "")}
        if res["status"] not in ("ok", "failed") or (res["status"] == "failed"
                                                     and stage != "stability"):
            break
    free = config(model, ion, relax={"fix_symmetry": False},
                  **({"phonons": phonons} if phonons else {}))
    out["wall_s"]["relax_free"] = run("relax", free, [
        "--intake", w["intake"], "--poscar", work / "POSCAR-free", "--out", w["relax_free"]],
        log)
    rf = read_result(w["relax_free"])
    out["relax_free"] = {k: rf.get(k) for k in ("status", "reason", "spacegroup_initial",
                                                "spacegroup_final", "symmetry_change")}
    if "displace" in out:
        d = read_result(w["displace"])
        out["displace"].update({k: d.get(k) for k in (
            "supercell_matrix", "n_atoms_supercell", "n_free_parameters", "n_patterns",
            "n_patterns_from_parameter_count", "design_conditioning",
            "symmetrize_max_shift_A", "residual_forces_zero_by_symmetry")})
        out["non_diagonal"] = bool(np.count_nonzero(
            np.array(d["supercell_matrix"]) - np.diag(np.diag(d["supercell_matrix"]))))
    if "forces" in out:
        out["forces"]["n_force_evaluations"] = read_result(w["forces"]).get(
            "n_force_evaluations")
    if "fit_ifc" in out:
        f = read_result(w["fit_ifc"])
        out["fit_ifc"].update({k: f.get(k) for k in (
            "method", "relative_force_error", "cv_relative_force_error", "cv_folds",
            "design_conditioning", "n_free_parameters")})
    if "stability" in out:
        st = read_result(w["stability"])
        out["stability"].update({k: st.get(k) for k in (
            "verdict", "stable", "lowest_frequency_THz", "n_imaginary_modes")})
        look = st.get("second_look") or {}
        out["stability"]["second_look_evaluations"] = look.get("n_force_evaluations", 0)
        out["stability"]["second_look"] = look.get("checked")
    if out.get("fit_ifc", {}).get("status") == "ok":
        disp = read_result(w["displace"])
        name, _, modal = model.partition(":")
        calc = get_calculator("sevenn", name, "cpu", "float64", modal).calculator
        t0 = time.perf_counter()
        fd, n_fd = finite_displacement_phonopy(disp, calc, log=None)
        out["wall_s"]["fd"] = time.perf_counter() - t0
        fitted = phonopy_from_displace(disp, read_fc2(work / "fc2.hdf5"))
        c = compare(fitted, fd, FdCheckSettings(mobile_ion=ion))
        out["phonons_config"] = phonons or {}
        c["fd_force_evaluations"] = n_fd
        out["fd"] = c
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ids", nargs="*", help="structure ids (default: every 4-40 atom one)")
    p.add_argument("--models", nargs="+", default=["7net-0", "7net-mf-0:PBE"])
    p.add_argument("--out", default=str(ROOT / "bench/fd_vs_fit.jsonl"))
    p.add_argument("--skip-done", action="store_true", help="skip lines already in --out")
    p.add_argument("--keep", help="keep the work folders under this folder")
    p.add_argument("--phonons", default="{}", help="config phonons section (JSON), e.g. "
                   "'{\"amplitude_A\": 0.01}'")
    a = p.parse_args()
    rows = manifest()
    ids = a.ids or sorted((k for k, r in rows.items() if 4 <= int(r["atoms_primitive"]) <= 40),
                          key=lambda k: int(rows[k]["atoms_primitive"]))
    done = set()
    if a.skip_done and Path(a.out).exists():
        for line in Path(a.out).read_text().splitlines():
            r = json.loads(line)
            done.add((r["structure"], r["model"]))
    for sid in ids:
        for model in a.models:
            if (sid, model) in done:
                continue
            with tempfile.TemporaryDirectory(prefix=f"fdfit-{sid}-", dir=a.keep) as tmp:
                if a.keep:
                    tmp = Path(a.keep) / f"{sid}-{model.replace(':', '-')}"
                    tmp.mkdir(parents=True, exist_ok=True)
                t0 = time.perf_counter()
                try:
                    line = measure(sid, model, Path(tmp), json.loads(a.phonons))
                except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
                    line = {"structure": sid, "model": model,
                            "error": f"{type(exc).__name__}: {exc}"}
                line["total_s"] = time.perf_counter() - t0
            with open(a.out, "a") as fh:
                fh.write(json.dumps(line) + "\n")
            print(json.dumps({k: line.get(k) for k in ("structure", "model", "total_s")}),
                  flush=True)


if __name__ == "__main__":
    main()
