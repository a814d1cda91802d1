"""The optional analyses on real MLP dynamics of a polyanion conductor: cubic Na3PS4.

The workflow never runs MD on cubic Na3PS4 (its SevenNet-0 phonons are unstable, so the
stability screen stops it), but the cubic phase is the real high-temperature phase, so a short
NVT run at 800 K is physical. Needs the demo's `results/materials/Na3PS4-cubic/displace/`
(run the demo first). Usage:
    python bench/polyanion_md.py [production_steps]     (default 600; 1.5 fs, frame every 4)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from phonion.calculators import get_calculator
from phonion.diffusion import analyze_trajectory
from phonion.dynamics import analyze_dynamics
from phonion.formats import atoms_from_dict, read_json, read_trajectory
from phonion.md import run_md
from phonion.settings import DiffusionSettings, DynamicsSettings, MDSettings

ROOT = Path(__file__).resolve().parents[1]
MAT = ROOT / "results/materials/Na3PS4-cubic"


def main(production: int) -> None:
    atoms = atoms_from_dict(read_json(MAT / "displace/displace.json")["supercell"])
    calc = get_calculator("sevenn", "7net-0", "cpu", "float64").calculator
    s = MDSettings(temperature_K=800.0, timestep_fs=1.5, equilibration_steps=100,
                   production_steps=production, interval=4, initial_state="maxwell_boltzmann")
    path = Path("/tmp/phonion-bench-na3ps4.h5")
    t0 = time.perf_counter()
    md = run_md(atoms, calc, s, path, progress_every_s=60)
    print(f"MD: {len(atoms)} atoms, {md['n_steps']} steps in {time.perf_counter() - t0:.0f} s "
          f"({md['steps_per_s']:.2f} steps/s)")
    traj = read_trajectory(path)
    diff, _ = analyze_trajectory(traj, DiffusionSettings(window=(0.3, 1.0), intercept=True))
    settings = DynamicsSettings(rdf=True, van_hove=True, reorientation=True, tetrahedra=True,
                                r_max_A=6.0, van_hove_lags=6, angle_filter_cm1=None)
    t0 = time.perf_counter()
    out, arrays = analyze_dynamics(traj, settings)
    print(f"dynamics in {time.perf_counter() - t0:.1f} s")
    keep = {k: v for k, v in out.items() if not isinstance(v, list) or k == "polyanions"}
    keep["mean_T_K"] = float(np.mean(traj["temperature_K"]))
    keep["d_avg_A2_ps"] = diff["d_avg_A2_ps"]
    keep["C_t_PS4_every_0.15ps"] = [round(float(c), 4) for c in
                                    arrays["reorientation/PS4"][::25]]
    print(json.dumps(keep, indent=1, default=float))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 600)
