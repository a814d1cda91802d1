"""Time of the full diffusion analysis (MSD, D with uncertainty, VDOS, melt filter) on a
12 500-frame × 200-atom trajectory, phonion against kinisi on the same trajectory.

The trajectory is synthetic but physical in shape: 100 'Li' walkers (D = 0.1 Å²/ps) and
100 host atoms vibrating around fixed sites, 0.006 ps between frames (1.5 fs × 4, the seed's
production run of 50 000 steps). Usage:
    python bench/diffusion_speed.py             # phonion only
    /path/to/kinisi-venv/bin/python bench/diffusion_speed.py --kinisi 2500  (frames; needs
    kinisi, ase)
"""

from __future__ import annotations

import sys
import time

import numpy as np

N_FRAMES, N_MOBILE, N_HOST, DT_PS, D_TRUE = 12_500, 100, 100, 0.006, 0.1
L = 15.0  # cubic box (Å)


def trajectory() -> dict:
    rng = np.random.default_rng(0)
    steps = rng.normal(0, np.sqrt(2 * D_TRUE * DT_PS), (N_FRAMES - 1, N_MOBILE, 3))
    mob = rng.uniform(0, L, (N_MOBILE, 3)) + np.concatenate(
        [np.zeros((1, N_MOBILE, 3)), np.cumsum(steps, axis=0)])
    host = rng.uniform(0, L, (N_HOST, 3)) + rng.normal(0, 0.1, (N_FRAMES, N_HOST, 3))
    pos = np.concatenate([mob, host], axis=1)
    vel = np.gradient(pos, DT_PS, axis=0)
    return {"positions_A": pos, "velocities_A_ps": vel,
            "numbers": np.array([3] * N_MOBILE + [16] * N_HOST),
            "frame_dt_ps": DT_PS, "temperature_K": np.full(N_FRAMES, 800.0),
            "target_temperature_K": 800.0, "cell_A": np.eye(3) * L}


def run_phonion(traj: dict) -> None:
    from phonion.diffusion import analyze_trajectory
    from phonion.settings import DiffusionSettings

    t0 = time.perf_counter()
    out, _ = analyze_trajectory(traj, DiffusionSettings(mobile_ion="Li"))
    wall = time.perf_counter() - t0
    lo, hi = out["d_avg_ci95_A2_ps"]
    print(f"phonion: {wall:.2f} s; D = {out['d_avg_A2_ps']:.4f} Å²/ps, 95 % [{lo:.4f}, "
          f"{hi:.4f}] (true {D_TRUE}), window {out['d_avg_fit_window_ps']} ps")


def run_kinisi(traj: dict, n_frames: int) -> None:
    import scipp as sc
    from ase import Atoms
    from kinisi.analyze import DiffusionAnalyzer

    symbols = ["Li"] * N_MOBILE + ["S"] * N_HOST
    frames = [Atoms(symbols, positions=p % L, cell=traj["cell_A"], pbc=True)
              for p in traj["positions_A"][:n_frames]]
    t0 = time.perf_counter()
    da = DiffusionAnalyzer.from_ase(frames, specie="Li", time_step=sc.scalar(1.5, unit="fs"),
                                    step_skip=sc.scalar(4, unit="dimensionless"),
                                    progress=False)
    da.diffusion(start_dt=sc.scalar(0.1 * n_frames * DT_PS, unit="ps"), progress=False)
    wall = time.perf_counter() - t0
    print(f"kinisi ({n_frames} frames): {wall:.2f} s; D = {sc.mean(da.D).value:.4g} "
          f"{da.D.unit}")


if __name__ == "__main__":
    traj = trajectory()
    if "--kinisi" in sys.argv:
        run_kinisi(traj, int(sys.argv[sys.argv.index("--kinisi") + 1]))
    else:
        run_phonion(traj)
