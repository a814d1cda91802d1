"""CP2K AIMD against MLP MD on the same cell at the same temperature (issue 14, seed 000 §2.6
and Fig. S7): the D ratio with both intervals, or, when a run is too short for a D, both
verdicts and the mobile-ion MSD ratio at a common lag.

Material: cubic Na3PS4 (the demo CIF, Hayashi et al. 2012), its 8-atom primitive cell (or
the 16-atom conventional one), relaxed by SevenNet-0; a small Na conductor. AIMD: phonion's
CP2K protocol (PBE, GAPW, DZVP-MOLOPT-SR, NVT Nosé–Hoover, 1.5 fs) at the cutoff given
(default 300/40 Ry: the 2-core budget; docs/dft.md has the converged 400/50). MLP MD:
SevenNet-0, same cell, thermostat, time step and length, from the same relaxed cell. The
AIMD runs in segments in ``--workdir`` and continues where it stopped: rerun the command to
extend a killed run.

Usage:
    python bench/aimd_vs_mlp.py [steps] [temperature_K] [--cutoff 300] [--workdir DIR]
                                [--cell primitive|conventional] [--ranks 1]
Prints one JSON line (appended to bench/aimd_vs_mlp.jsonl).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from phonion.formats import read_trajectory

ROOT = Path(__file__).resolve().parents[1]
CIF = ROOT / "config/demo/structures/Na3PS4-cubic.cif"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("steps", type=int, nargs="?", default=2000)
    p.add_argument("temperature_K", type=float, nargs="?", default=800.0)
    p.add_argument("--cutoff", type=float, default=300.0)
    p.add_argument("--workdir", default="/tmp/phonion-bench-aimd")
    p.add_argument("--cell", choices=("primitive", "conventional"), default="primitive")
    p.add_argument("--ranks", type=int, default=1, help="MPI ranks of CP2K")
    a = p.parse_args()

    from ase.io import read

    from phonion.aimd_validation import compare
    from phonion.calculators import get_calculator
    from phonion.dft import get_engine
    from phonion.dft.aimd import run_aimd
    from phonion.dft.cp2k import Cp2kSettings
    from phonion.diffusion import analyze_trajectory
    from phonion.md import run_md
    from phonion.relax import relax
    from phonion.settings import DiffusionSettings, MDSettings, RelaxSettings

    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    calc = get_calculator("sevenn", "7net-0", "cpu", "float64").calculator
    atoms = read(CIF)
    if a.cell == "primitive":  # the body-centred cell's primitive one: 8 atoms
        from pymatgen.io.ase import AseAtomsAdaptor
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        prim = SpacegroupAnalyzer(AseAtomsAdaptor.get_structure(atoms)
                                  ).get_primitive_standard_structure()
        atoms = AseAtomsAdaptor.get_atoms(prim)
    relaxed = work / f"relaxed_{a.cell}.json"
    if relaxed.is_file():
        from phonion.formats import atoms_from_dict

        atoms = atoms_from_dict(json.loads(relaxed.read_text()))
    else:
        atoms = relax(atoms, calc, RelaxSettings(fmax_eV_A=0.01, max_steps=300),
                      logfile=None).atoms
        from phonion.formats import atoms_to_dict

        relaxed.write_text(json.dumps(atoms_to_dict(atoms)))
    print(f"{atoms.get_chemical_formula()}: {len(atoms)} atoms, a = "
          f"{atoms.cell.lengths()[0]:.4f} Å (SevenNet-0)", flush=True)

    threads = os.environ.get("OMP_NUM_THREADS", "1")
    protocol = Cp2kSettings(cutoff_Ry=a.cutoff, rel_cutoff_Ry=40.0)
    binary = shutil.which("cp2k.psmp") or shutil.which("cp2k")
    run_protocol = Cp2kSettings(cutoff_Ry=a.cutoff, rel_cutoff_Ry=40.0,
                                command=f"mpirun -np {a.ranks} {binary}" if a.ranks > 1
                                else binary)
    t0 = time.perf_counter()
    aimd_traj, record = run_aimd(get_engine("cp2k"), protocol, atoms, a.temperature_K, a.steps,
                                 work / "aimd", {"env": {**os.environ, "OMP_NUM_THREADS": threads,
                                                         # this benchmark machine runs as root
                                                         "OMPI_ALLOW_RUN_AS_ROOT": "1",
                                                         "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}},
                                 run_protocol=run_protocol)
    t_aimd = time.perf_counter() - t0
    n = len(aimd_traj["step"])
    print(f"AIMD: {n} frames in {t_aimd:.0f} s this call", flush=True)

    mlp_path = work / f"mlp_{a.steps}_{a.temperature_K:g}K.h5"
    s = MDSettings(temperature_K=a.temperature_K, timestep_fs=protocol.aimd_timestep_fs,
                   equilibration_steps=0, production_steps=a.steps, interval=1,
                   thermostat="nose_hoover_chain", initial_state="maxwell_boltzmann")
    t0 = time.perf_counter()
    if not mlp_path.is_file():
        run_md(atoms, calc, s, mlp_path, progress_every_s=120)
    t_mlp = time.perf_counter() - t0
    mlp_traj = read_trajectory(mlp_path)
    ds = DiffusionSettings(mobile_ion="Na", min_duration_ps=0.3)
    mlp_res, mlp_arrays = analyze_trajectory(mlp_traj, ds)
    out, _ = compare(aimd_traj, mlp_res, mlp_arrays, ds)
    row = {"material": "Na3PS4-cubic", "n_atoms": len(atoms), "temperature_K": a.temperature_K,
           "steps": a.steps, "timestep_fs": protocol.aimd_timestep_fs, "cutoff_Ry": a.cutoff,
           "aimd_frames": n, "aimd_wall_s_this_call": round(t_aimd, 1),
           "aimd_segments": record["segments"], "mlp_wall_s": round(t_mlp, 1),
           "mean_T_aimd_K": float(np.mean(aimd_traj.get("temperature_K", [np.nan]))),
           **{k: out.get(k) for k in ("d_mlp_A2_ps", "d_mlp_ci95_A2_ps", "d_aimd_A2_ps",
                                      "d_aimd_ci95_A2_ps", "d_ratio_mlp_aimd",
                                      "d_ratio_interval", "mlp_verdict", "aimd_verdict",
                                      "msd_ratio_mlp_aimd", "common_lag_ps", "reason")}}
    print(json.dumps(row, default=float))
    with open(Path(__file__).with_suffix(".jsonl"), "a") as fh:
        fh.write(json.dumps(row, default=float) + "\n")


if __name__ == "__main__":
    main()
