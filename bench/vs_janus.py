"""phonion's phonon chain against janus-core's `janus phonons` (finite displacements with
phonopy), side by side: same SevenNet-0 checkpoint, same relaxed cell, same supercell, same
threads, runs alternated (issue 10).

For each structure: phonion relaxes it (not timed), then, ``repeats`` times in turn,

- phonion: its stage commands as the workflow runs them, each its own process
  (displace → forces → fit_ifc → stability → phonon_descriptors, default settings): wall
  time per stage and in all, force evaluations, and the Na MSD it reports;
- janus-core: ``janus phonons --no-minimize`` on the relaxed cell with the same supercell
  matrix and model file, force constants only (``--no-bands``, ``--no-dos``), then the Na MSD
  of its force constants with phonion's converged-mesh routine (not timed);
- janus-core with the outputs phonion's chain also gives (``--bands --dos --pdos
  --thermal --plot-to-file``), for a like-for-like wall time;

and the reference: phonopy finite displacements (0.01 Å, ±) with the same model on the
same supercell, MSD converged to 0.1 % (the Na MSD error of both is against it).

    python bench/vs_janus.py /work/venvs/janus/bin/janus NaCl NaYS2 ...

janus-core lives in its own environment (pip install "janus-core[sevennet]==0.9.8" next to
torch==2.13.0); nothing of it is part of phonion. One JSON line per structure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from jsonl import each_structure  # bench/ is on sys.path when run as a script

from phonion.calculators import get_calculator, model_file
from phonion.formats import atoms_from_dict, read_result
from phonion.harmonic import phonopy_from_displace, to_ase
from phonion.phonon_descriptors import converge_mesh
from phonion.settings import stage_settings

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = (ROOT / "config/demo/structures", ROOT / "tests/data/structures")
STAGES = ("displace", "forces", "fit_ifc", "stability", "phonon_descriptors")
T = 800.0


def _config() -> dict:
    from snakemake.utils import validate

    cfg = {"structures": {"folder": "x"}}
    validate(cfg, str(ROOT / "workflow/schemas/config.schema.yaml"))
    return cfg


def _run(args: list[str], log: Path) -> float:
    t0 = time.perf_counter()
    with open(log, "a") as fh:
        subprocess.run(args, check=True, stdout=fh, stderr=subprocess.STDOUT,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    return time.perf_counter() - t0


def phonion_chain(work: Path, relax_json: Path) -> dict:
    cfg = _config()
    py = [sys.executable, "-m", "phonion"]
    out = {s: work / f"{s}.json" for s in STAGES}
    args = {
        "displace": ["--relax", relax_json],
        "forces": ["--displace", out["displace"], "--forceset", work / "forces.h5"],
        "fit_ifc": ["--displace", out["displace"], "--forces", out["forces"],
                    "--forceset", work / "forces.h5", "--fc2", work / "fc2.hdf5"],
        "stability": ["--displace", out["displace"], "--fit-ifc", out["fit_ifc"],
                      "--fc2", work / "fc2.hdf5", "--figures", work / "st-figures"],
        "phonon_descriptors": ["--displace", out["displace"], "--stability", out["stability"],
                               "--fc2", work / "fc2.hdf5", "--arrays", work / "modes.h5",
                               "--figures", work / "pd-figures"],
    }
    wall = {}
    for stage in STAGES:
        wall[stage] = round(_run([*py, stage, "--settings",
                                  stage_settings(stage, cfg).to_json(), "--out", out[stage],
                                  *map(str, args[stage])], work / "phonion.log"), 2)
    res = {s: read_result(out[s]) for s in STAGES}
    for s in STAGES:  # a stage that did not pass is the answer, not a missing key
        if res[s].get("status") != "ok":
            raise RuntimeError(f"phonion {s}: {res[s].get('status')}: {res[s].get('reason')}")
    pd = res["phonon_descriptors"]
    return {"wall_s": wall, "total_s": round(sum(wall.values()), 1),
            "to_fc2_s": round(sum(wall[s] for s in STAGES[:3]), 1),
            "force_evaluations": res["forces"]["n_force_evaluations"],
            "fit": res["fit_ifc"]["method"], "stable": res["stability"].get("stable"),
            "msd_A2": pd.get("by_temperature_K", {}).get("800", {}).get("msd_mobile_mean_A2")}


JANUS_FC_ONLY = ["--no-bands", "--no-dos", "--no-pdos", "--no-thermal"]
# the outputs phonion's stability and phonon_descriptors stages also give: bands, DOS,
# PDOS, thermal properties and their figures
JANUS_FULL = ["--bands", "--dos", "--pdos", "--thermal", "--plot-to-file"]


def janus_phonons(janus: str, work: Path, poscar: Path, matrix: np.ndarray, model: str,
                  displace: dict, outputs: list[str] = JANUS_FC_ONLY) -> dict:
    prefix = work / "janus"
    t0 = time.perf_counter()
    subprocess.run([janus, "phonons", "--struct", str(poscar), "--arch", "sevennet",
                    "--model", model, "--device", "cpu", "--supercell",
                    " ".join(str(int(x)) for x in matrix.T.ravel()), "--no-minimize",
                    "--displacement", "0.01", *outputs, "--no-tracker", "--no-progress-bar",
                    "--hdf5", "--file-prefix", str(prefix)], check=True, capture_output=True,
                   text=True, cwd=work)
    wall = time.perf_counter() - t0
    import phonopy

    yml = next(work.glob("janus*phonopy*.yml"))
    ph = phonopy.load(yml, log_level=0, produce_fc=False)
    fc_file = next(work.glob("janus*force_constants*.hdf5"), None)
    if fc_file is not None:
        from phonopy.file_IO import read_force_constants_hdf5

        ph.force_constants = read_force_constants_hdf5(str(fc_file))
    else:
        ph.produce_force_constants()
    return {"total_s": round(wall, 1), "force_evaluations": len(ph.dataset["first_atoms"]),
            "msd_A2": _converged_msd(ph)}


def _converged_msd(ph, tolerance: float = 0.001) -> float:
    mobile = np.array(ph.primitive.symbols) == "Na"
    _, history, _ = converge_mesh(ph, [T], mobile, tolerance=tolerance)
    return history[-1]["msd_mobile_mean_extrapolated_A2"]


def reference_msd(displace: dict, calc) -> tuple[float, int]:
    """phonopy finite displacements (0.01 Å, ±) with the same model, converged mesh."""
    ph = phonopy_from_displace(displace, symmetry=True)  # phonopy's symmetry-reduced set
    ph.generate_displacements(distance=0.01, is_plusminus=True)
    sc = to_ase(ph.supercell)
    forces = []
    for x in ph.supercells_with_displacements:
        a = to_ase(x)
        a.calc = calc
        forces.append(a.get_forces())
    ph.forces = forces
    ph.produce_force_constants()
    del sc
    return _converged_msd(ph), len(forces)


def compare(janus: str, name: str, repeats: int = 2) -> dict:
    src = next(p for f in FOLDERS for p in [f / f"{name}.cif"] if p.exists())
    cfg = _config()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        py = [sys.executable, "-m", "phonion"]
        _run([*py, "intake", "--id", name, "--source", str(src), "--settings",
              stage_settings("intake", cfg).to_json(), "--out", str(work / "intake.json")],
             work / "setup.log")
        _run([*py, "relax", "--intake", str(work / "intake.json"), "--poscar",
              str(work / "POSCAR"), "--settings", stage_settings("relax", cfg).to_json(),
              "--out", str(work / "relax.json")], work / "setup.log")
        relax = read_result(work / "relax.json")
        if relax["status"] != "ok":
            return {"structure": name, "relax": relax["reason"]}
        runs = {"phonion": [], "janus": [], "janus_full": []}
        order = ("phonion", "janus", "janus_full")
        for k in range(repeats):
            for who in order if k % 2 == 0 else order[::-1]:
                w = work / f"{who}{k}"
                w.mkdir()
                if who == "phonion":
                    runs[who].append(phonion_chain(w, work / "relax.json"))
                else:
                    disp = read_result(work / "phonion0/displace.json")
                    runs[who].append(janus_phonons(
                        janus, w, work / "POSCAR", np.array(disp["supercell_matrix"]),
                        str(model_file("sevenn", "7net-0")), disp,
                        JANUS_FULL if who == "janus_full" else JANUS_FC_ONLY))
        disp = read_result(work / "phonion0/displace.json")
        calc = get_calculator("sevenn", "7net-0").calculator
        msd_ref, n_fd = reference_msd(disp, calc)
    prim = atoms_from_dict(disp["primitive"])
    out = {"structure": name, "formula": prim.get_chemical_formula("metal"),
           "spacegroup": relax["spacegroup_final"], "n_supercell": disp["n_atoms_supercell"],
           "supercell_matrix": disp["supercell_matrix"], "msd_reference_A2": msd_ref,
           "reference_force_evaluations": n_fd, "runs": runs}
    for who, rs in runs.items():
        out[f"{who}_wall_s"] = round(float(np.mean([r["total_s"] for r in rs])), 1)
        out[f"{who}_force_evaluations"] = rs[0]["force_evaluations"]
        msd = rs[0]["msd_A2"]
        out[f"{who}_msd_error"] = None if msd is None else round(msd / msd_ref - 1, 5)
    out["wall_ratio"] = round(out["phonion_wall_s"] / out["janus_wall_s"], 2)
    # like for like: phonion's whole chain against janus-core with bands, DOS, PDOS,
    # thermal properties and plots; phonion up to fc2 against janus-core's force constants
    out["wall_ratio_same_outputs"] = round(out["phonion_wall_s"] / out["janus_full_wall_s"], 2)
    out["phonion_to_fc2_s"] = round(float(np.mean([r["to_fc2_s"] for r in runs["phonion"]])), 1)
    out["force_evaluation_ratio"] = round(out["phonion_force_evaluations"]
                                          / out["janus_force_evaluations"], 2)
    return out


if __name__ == "__main__":
    janus, *names = sys.argv[1:]
    each_structure(names, lambda name: compare(janus, name))
