"""Time of each optional MD analysis (config ``dynamics``) on a seed-000-length trajectory:
12 500 frames of a 3×3×3 cubic Na3PS4 supercell (216 atoms), 0.006 ps between frames.

The trajectory is synthetic: Na random walkers (D = 0.05 Å²/ps) and PS4 units that rotate
rigidly about random axes by small random angles each frame (rotational diffusion) while
vibrating, so every analysis has something to find. Usage:
    python bench/dynamics_speed.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from ase.io import read
from scipy.spatial.transform import Rotation

from phonion.dynamics import analyze_dynamics, find_polyanions
from phonion.settings import DynamicsSettings

N_FRAMES, DT_PS, D_NA = 12_500, 0.006, 0.05
CIF = Path(__file__).resolve().parents[1] / "config/demo/structures/Na3PS4-cubic.cif"


def trajectory() -> dict:
    atoms = read(CIF).repeat((3, 3, 3))
    symbols = np.array(atoms.get_chemical_symbols())
    rng = np.random.default_rng(0)
    pos = np.repeat(atoms.positions[None], N_FRAMES, axis=0)
    na = symbols == "Na"
    steps = rng.normal(0, np.sqrt(2 * D_NA * DT_PS), (N_FRAMES - 1, na.sum(), 3))
    pos[1:, na] += np.cumsum(steps, axis=0)
    (unit,) = find_polyanions(atoms.positions[None], atoms.cell[:], symbols, "Na")
    vec0 = unit.vectors(atoms.positions[None])[0]  # units × 4 × 3
    for k, c in enumerate(unit.centres):
        rot = Rotation.from_rotvec(rng.normal(0, 0.02, (N_FRAMES, 3)))
        acc = [Rotation.identity()]
        for r in rot[1:]:
            acc.append(r * acc[-1])
        mats = np.stack([a.as_matrix() for a in acc])  # frames × 3 × 3
        pos[:, unit.ligands[k]] = (atoms.positions[c] + np.einsum("fij,lj->fli", mats, vec0[k])
                                   - unit.shifts_A[k])
    pos += rng.normal(0, 0.05, pos.shape)
    return {"numbers": atoms.numbers, "positions_A": pos, "cell_A": atoms.cell[:],
            "frame_dt_ps": DT_PS}


def main() -> None:
    t0 = time.perf_counter()
    traj = trajectory()
    print(f"trajectory {traj['positions_A'].shape} built in {time.perf_counter() - t0:.1f} s")
    for name in DynamicsSettings.ANALYSES:
        t0 = time.perf_counter()
        out, _ = analyze_dynamics(traj, DynamicsSettings(**{name: True}))
        wall = time.perf_counter() - t0
        shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()
                 if k not in ("analyses", "duration_ps", "frame_dt_ps", "mobile_ion")}
        print(f"{name:14s} {wall:6.1f} s  {shown}")


if __name__ == "__main__":
    main()
