"""MD: trajectory layout, kill-and-resume, divergence, thermostat temperature."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from ase.build import bulk

from phonion.formats import read_trajectory
from phonion.md import Diverged, run_md
from phonion.potentials import RigidIonPotential
from phonion.settings import MDSettings

from conftest import ROOT, rigid_ion_phonopy

SETTINGS = dict(temperature_K=600.0, equilibration_steps=60, production_steps=600,
                interval=4, timestep_fs=2.0, seed=3)

RUNNER = f"""
import os, signal, sys
from ase.build import bulk
from phonion.md import run_md
from phonion.settings import MDSettings
from phonion.potentials import RigidIonPotential

class Killed(RigidIonPotential):  # sends itself signal S at force call K (K = 0: never)
    calls = 0
    def calculate(self, *args, **kwargs):
        Killed.calls += 1
        if Killed.calls == int(sys.argv[2]):
            os.kill(os.getpid(), int(sys.argv[3]))
        super().calculate(*args, **kwargs)

atoms = bulk("NaCl", "rocksalt", a=5.75) * (2, 2, 2)
s = MDSettings(**{{**{SETTINGS}, "thermostat": sys.argv[4]}})
run_md(atoms, Killed(cutoff_A=6.0), s, sys.argv[1], log=None)
"""


def _run(path, thermostat="langevin", kill_at=0, sig=signal.SIGKILL):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(path), str(kill_at), str(int(sig)),
                           thermostat], env=env, capture_output=True, text=True, timeout=600)
    return proc


def _check_continuous(traj):
    steps = traj["step"]
    eq, prod, k = (SETTINGS[x] for x in ("equilibration_steps", "production_steps",
                                         "interval"))
    expected = np.arange(eq + k, eq + prod + 1, k)
    assert np.array_equal(steps, expected)  # no duplicated or missing frames
    jumps = np.linalg.norm(np.diff(traj["positions_A"], axis=0), axis=2).max()
    assert jumps < 0.5  # Å per 8 fs: a continuous, unwrapped trajectory


@pytest.mark.parametrize("thermostat, sig", [("langevin", signal.SIGKILL),
                                             ("langevin", signal.SIGTERM),
                                             ("bussi", signal.SIGKILL),
                                             ("nose_hoover_chain", signal.SIGKILL)])
def test_kill_and_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, thermostat, sig):
    full = tmp_path / "full.h5"
    assert _run(full, thermostat).returncode == 0
    ref = read_trajectory(full)
    _check_continuous(ref)

    broken = tmp_path / "broken.h5"
    kill_at = int(np.random.default_rng(int(sig)).integers(150, 500))  # a force call mid-run
    proc = _run(broken, thermostat, kill_at, sig)
    assert proc.returncode != 0  # SIGKILL: -9; SIGTERM: the run stops at a step boundary
    partial = read_trajectory(broken)
    assert 0 < len(partial["step"]) < len(ref["step"])  # it really was cut short
    assert _run(broken, thermostat).returncode == 0  # resume
    resumed = read_trajectory(broken)
    _check_continuous(resumed)
    # the random state and chain variables are restored: the same run, bit for bit
    for key in ("positions_A", "velocities_A_ps", "potential_energy_eV", "step"):
        assert np.array_equal(resumed[key], ref[key]), key


def test_langevin_holds_the_target_temperature(tmp_path):
    atoms = bulk("NaCl", "rocksalt", a=5.75) * (2, 2, 2)
    s = MDSettings(**{**SETTINGS, "production_steps": 800})
    run_md(atoms, RigidIonPotential(cutoff_A=6.0), s, tmp_path / "t.h5", log=None)
    traj = read_trajectory(tmp_path / "t.h5")
    # 16 atoms: instantaneous T fluctuates by ~T*sqrt(2/(3N)) = 0.2 T
    assert traj["temperature_K"].mean() == pytest.approx(600.0, rel=0.1)


def test_divergence_stops_the_run(tmp_path):
    atoms = bulk("NaCl", "rocksalt", a=5.75) * (2, 2, 2)
    atoms.positions[1] = atoms.positions[0] + [0.4, 0.0, 0.0]
    with pytest.raises(Diverged, match="apart|force|temperature"):
        run_md(atoms, RigidIonPotential(cutoff_A=6.0), MDSettings(**SETTINGS),
               tmp_path / "d.h5", log=None)


ADAPTIVE_RUNNER = f"""
import os, signal, sys
from ase.build import bulk
from phonion.formats import read_trajectory
from phonion.md import run_adaptive
from phonion.settings import MDSettings
from phonion.potentials import RigidIonPotential

class Killed(RigidIonPotential):  # SIGKILLs its own process at force call K (0: never)
    calls = 0
    def calculate(self, *args, **kwargs):
        Killed.calls += 1
        if Killed.calls == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)
        super().calculate(*args, **kwargs)

atoms = bulk("NaCl", "rocksalt", a=5.75) * (2, 2, 2)
# a stand-in criterion that needs 3 chunks: converged once 500 production steps exist
crit = lambda p: (len(read_trajectory(p)["step"]) * 4 >= 500, {{}})
s = run_adaptive(atoms, Killed(cutoff_A=6.0),
                 MDSettings(**{{**{SETTINGS}, "production_steps": 200, "adaptive": True,
                                "adaptive_chunk_steps": 160,
                                "adaptive_max_production_steps": 2000}}),
                 sys.argv[1], crit, log=None)
print("PROD", s["production_steps"], s["converged"], len(s["adaptive"]))
"""


def test_adaptive_md_extends_in_chunks_and_resumes_on_the_same_grid(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-c", ADAPTIVE_RUNNER]
    full = subprocess.run([*cmd, str(tmp_path / "full.h5"), "0"], env=env,
                          capture_output=True, text=True, timeout=600, check=True)
    assert "PROD 520 True 3" in full.stdout  # 200 → 360 → 520 steps, then converged
    ref = read_trajectory(tmp_path / "full.h5")
    eq = SETTINGS["equilibration_steps"]
    assert np.array_equal(ref["step"], np.arange(eq + 4, eq + 520 + 1, 4))

    # SIGKILL at a random force call inside the second chunk (steps 260-420), then resume
    broken = tmp_path / "broken.h5"
    kill_at = int(np.random.default_rng(5).integers(eq + 210, eq + 350))
    proc = subprocess.run([*cmd, str(broken), str(kill_at)], env=env, timeout=600)
    assert proc.returncode == -signal.SIGKILL
    cut = len(read_trajectory(broken)["step"])
    assert 200 // 4 < cut < len(ref["step"])  # killed mid-run, past the first chunk
    again = subprocess.run([*cmd, str(broken), "0"], env=env, capture_output=True, text=True,
                           timeout=600, check=True)
    assert "PROD 520 True" in again.stdout
    resumed = read_trajectory(broken)
    assert np.array_equal(resumed["step"], ref["step"])  # no duplicated or missing frames
    assert np.linalg.norm(np.diff(resumed["positions_A"], axis=0), axis=2).max() < 0.5


def test_adaptive_stopping_rule_on_random_walks():
    from phonion.diffusion import d_avg_converged
    from phonion.settings import DiffusionSettings

    rng = np.random.default_rng(7)
    dt = 0.05

    def traj(n_frames):
        steps = rng.normal(0, np.sqrt(2 * 0.1 * dt), size=(n_frames - 1, 32, 3))
        pos = np.concatenate([np.zeros((1, 32, 3)), np.cumsum(steps, axis=0)])
        return {"numbers": np.full(32, 11), "positions_A": pos, "frame_dt_ps": dt}

    na = DiffusionSettings(mobile_ion="Na")
    long_ok, info = d_avg_converged(traj(2000), na, 0.1, min_duration_ps=5.0)
    assert long_ok and info["rel_stderr"] < 0.1
    short_ok, info = d_avg_converged(traj(60), na, 0.1, min_duration_ps=5.0)
    assert not short_ok  # 3 ps < min_duration_ps
    assert not d_avg_converged(traj(2000), na, 0.001)[0]  # target out of reach
    rattling = traj(2000)
    rattling["positions_A"] = rng.normal(0, 0.2, rattling["positions_A"].shape)
    assert not d_avg_converged(rattling, na, 0.5)[0]  # a plateau never converges


def test_adaptive_stopping_uses_the_gls_uncertainty():
    """Issue 25: on issue 25's realistic 20 ps hopping run (D = 1.2e-6 cm²/s, 0.7 Å²
    offset) the default estimator reaches a 35 % relative standard error and stops the
    run; the blocks estimator sees no diffusive regime and would extend it."""
    from test_diffusion_coverage import lattice_gas_ou

    from phonion.diffusion import d_avg_converged
    from phonion.settings import DiffusionSettings

    x = lattice_gas_ou(np.random.default_rng(0), 401, 48, 0.012, 0.05)
    traj = {"numbers": np.full(48, 3), "positions_A": x, "frame_dt_ps": 0.05}
    ok, info = d_avg_converged(traj, DiffusionSettings(mobile_ion="Li"), 0.35)
    assert ok and info["class"] == "diffusive" and info["estimator"] == "gls"
    ok, info = d_avg_converged(traj, DiffusionSettings(mobile_ion="Li", estimator="blocks"),
                               0.35)
    assert not ok and info["class"] != "diffusive"


def test_harmonic_initial_state_starts_at_the_target_temperature(tmp_path):
    """From the harmonic state the first 120 fs already average the target T (measured:
    314 K for 300 K); Maxwell-Boltzmann velocities on the relaxed structure lose half of it
    to the potential energy (148 K)."""
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True) * (2, 2, 2)  # 64 atoms
    calc = RigidIonPotential(cutoff_A=6.0)
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    relaxed = atoms.copy()
    relaxed.calc = calc
    BFGS(FrechetCellFilter(relaxed), logfile=None).run(fmax=1e-4)
    fc = rigid_ion_phonopy(relaxed, 1, calc, primitive_matrix="P").force_constants
    base = dict(temperature_K=300.0, equilibration_steps=0, production_steps=60, interval=2,
                timestep_fs=2.0, seed=1, thermostat="langevin", friction_per_fs=0.002)
    means = {}
    for state in ("harmonic", "maxwell_boltzmann"):
        s = MDSettings(**base, initial_state=state)
        out = run_md(relaxed.copy(), calc, s, tmp_path / f"{state}.h5", log=None,
                     force_constants=fc)
        assert out["initial_state"] == state
        means[state] = read_trajectory(tmp_path / f"{state}.h5")["temperature_K"].mean()
    assert means["harmonic"] == pytest.approx(300.0, rel=0.15), means
    assert means["maxwell_boltzmann"] < 0.8 * 300.0, means


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_partial_trajectory_starts_over(tmp_path, damage):
    """A checkpoint file that cannot be read (truncated, overwritten) is not resumed and does
    not block the run: MD starts over and gives the uninterrupted trajectory."""
    full = tmp_path / "full.h5"
    assert _run(full).returncode == 0
    broken = tmp_path / "broken.h5"
    assert _run(broken, kill_at=300).returncode != 0
    size = broken.stat().st_size
    with open(broken, "r+b") as fh:
        if damage == "truncate":
            fh.truncate(size // 3)
        else:
            fh.write(np.random.default_rng(0).bytes(size))
    assert _run(broken).returncode == 0
    assert np.array_equal(read_trajectory(broken)["positions_A"],
                          read_trajectory(full)["positions_A"])
