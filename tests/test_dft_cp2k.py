"""CP2K engine run for real (issue 14): static forces checked against finite differences
of energies, displaced supercells through forceset_from_runs and symfc to phonons, a
short NVT AIMD through the diffusion analysis, and an AIMD killed mid-run and continued
from CP2K's restart file. Needs Debian's ``cp2k`` and ``cp2k-data`` (.ci/run installs
them); one CP2K process at a time, OMP_NUM_THREADS=1.

The cutoff is a test cutoff (250/40 Ry, below the 400/50 default): energies are not
converged, but forces stay the exact derivative of the energy CP2K computes, which is what
the finite-difference test checks. Wall times: docs/dft.md.
"""

from __future__ import annotations

import os
import shutil
import signal
import time

import numpy as np
import pytest
from ase.build import bulk

from phonion.dft import DFTRunFailed, forceset_from_runs, get_engine

BINARY = shutil.which("cp2k.psmp") or shutil.which("cp2k.ssmp") or shutil.which("cp2k")
pytestmark = pytest.mark.skipif(
    BINARY is None, reason="no CP2K binary (cp2k.psmp / cp2k.ssmp / cp2k) on PATH: "
    "install Debian's cp2k and cp2k-data (.ci/run does as root)")

if BINARY is not None:
    from phonion.dft import cp2k

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
A_NACL = 5.64


def _settings(**kw):
    return cp2k.Cp2kSettings(**{"cutoff_Ry": CUTOFF, "rel_cutoff_Ry": REL_CUTOFF,
                                "command": BINARY, **kw})


CUTOFF, REL_CUTOFF = 250.0, 40.0  # Ry: test values (default 400/50)


def _static(atoms, d, s, wfn_guess=None):
    cp2k.write_static(atoms, d, s, wfn_guess=wfn_guess)
    cp2k.run(d, s, env=ENV, timeout_s=300)
    return cp2k.read_forces(d)


@pytest.fixture(scope="module")
def static_runs(tmp_path_factory):
    """Static force runs of conventional NaCl (8 atoms, Γ only): undisplaced, Na 0 moved
    by U and 2U along x, Cl 1 moved by U along x (the displaced ones start their SCF from
    the undisplaced run's wavefunction)."""
    s = _settings()
    root = tmp_path_factory.mktemp("static")
    sc = bulk("NaCl", "rocksalt", a=A_NACL, cubic=True)
    cases = {"ref": (0, 0.0), "na_u": (0, U), "na_2u": (0, 2 * U), "cl_u": (1, U)}
    out, times = {}, {}
    for name, (atom, dx) in cases.items():
        at = sc.copy()
        at.positions[atom, 0] += dx
        t0 = time.perf_counter()
        guess = None if name == "ref" else root / "ref" / f"{cp2k.PROJECT}-RESTART.wfn"
        out[name] = (root / name, *_static(at, root / name, s, guess))
        times[name] = time.perf_counter() - t0
    return {"supercell": sc, "runs": out, "times_s": times}


U = 0.02


def test_static_forces_match_finite_differences(static_runs):
    """Forces of the run with Na moved by U: finite, summing to ~0 (momentum
    conservation, up to the grid error at the test cutoff), restoring, and
    F_x of that Na equal to −dE/dx by the central difference of the energies at 0 and 2U
    (step U = 0.02 Å)."""
    r = static_runs["runs"]
    _, f, e = r["na_u"]
    print("static run times (s):", static_runs["times_s"])
    assert f.shape == (8, 3) and np.isfinite(f).all() and np.isfinite(e)
    fd = -(r["na_2u"][2] - r["ref"][2]) / (2 * U)
    print(f"F_x {f[0, 0]:.5f} eV/Å, finite difference {fd:.5f}, sum {f.sum(axis=0)}")
    np.testing.assert_allclose(f.sum(axis=0), 0.0, atol=SUM_TOL)
    assert f[0, 0] < -0.01  # restoring
    # tolerance: the O(U²) central-difference error plus the SCF noise of the energies
    assert f[0, 0] == pytest.approx(fd, abs=FD_TOL)


SUM_TOL = 0.005  # eV/Å (measured 0.001 at 250/40 Ry; 0.016 at 200/30 Ry)
FD_TOL = 0.002  # eV/Å (measured agreement 2e-5 eV/Å at 250/40 Ry)


def test_forceset_fit_phonons(static_runs):
    """Conventional NaCl (8 atoms) as its own supercell: the undisplaced reference and
    one displaced Na and Cl through forceset_from_runs, symfc, phonopy: Γ acoustic ~0,
    optical modes real and in NaCl's range (test cutoff, Γ-only)."""
    from phonopy import Phonopy

    from phonion.fit_ifc import fit_symfc
    from phonion.harmonic import frequencies_at, to_phonopy

    engine = get_engine("cp2k")
    sc, r = static_runs["supercell"], static_runs["runs"]
    disp = np.zeros((2, len(sc), 3))
    disp[0, 0, 0] = U  # Na
    disp[1, 1, 0] = U  # Cl
    fs = forceset_from_runs(engine, sc, disp, [r["na_u"][0], r["cl_u"][0]],
                            reference=r["ref"][0])
    assert fs.forces_eV_A.shape == (2, 8, 3) and fs.meta["engine"] == "cp2k"
    ph = Phonopy(to_phonopy(sc), supercell_matrix=np.eye(3, dtype=int),
                 primitive_matrix="F", log_level=0)
    ph.force_constants = fit_symfc(ph, fs.displacements_A, fs.forces_eV_A)
    f = np.sort(frequencies_at(ph, [0, 0, 0]))
    print("Γ frequencies (THz):", f)
    assert np.isfinite(f).all() and len(f) == 6
    np.testing.assert_allclose(f[:3], 0.0, atol=0.05)
    assert (f[3:] > 1.0).all() and (f[3:] < 10.0).all()


@pytest.fixture(scope="module")
def killed_aimd(tmp_path_factory):
    """An 8-atom NaCl NVT AIMD asked for TOTAL steps (1 fs, 600 K, restart file every 2
    steps), killed after step 5, then continued from its restart file to TOTAL."""
    total = 8
    s = _settings(aimd_timestep_fs=1.0, aimd_restart_every=2)
    root = tmp_path_factory.mktemp("aimd")
    seg0, seg1 = root / "seg0", root / "seg1"
    sc = bulk("NaCl", "rocksalt", a=A_NACL, cubic=True)
    cp2k.write_aimd(sc, seg0, s, 600.0, total)
    t0 = time.perf_counter()
    proc = cp2k.start(seg0, s, env=ENV)
    ener = seg0 / f"{cp2k.PROJECT}-1.ener"
    try:
        while proc.poll() is None:
            lines = ener.read_text().splitlines() if ener.is_file() else []
            if sum(1 for ln in lines if ln.strip() and not ln.startswith("#")) >= 6:
                break  # steps 0..5 written
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    t_killed = time.perf_counter() - t0
    rec = cp2k.continue_aimd(seg0, seg1, s, total)
    cp2k.run(seg1, s, env=ENV, timeout_s=600)
    return {"total": total, "seg0": seg0, "seg1": seg1, "record": rec, "settings": s,
            "t_killed_s": t_killed, "t_all_s": time.perf_counter() - t0}


def test_aimd_kill_and_continue(killed_aimd):
    k = killed_aimd
    seg0, seg1, total = k["seg0"], k["seg1"], k["total"]
    ok, why = cp2k.check(seg0)
    assert not ok and ("PROGRAM ENDED" in why or "MD ended" in why)
    rec = k["record"]
    assert rec["restart_step"] in (2, 4) and rec["previous_last_step"] >= 5
    assert cp2k.check(seg1) == (True, "")
    part = cp2k.read_trajectory(seg0)
    assert part["step"][0] == 0 and part["step"][-1] >= 5
    t = cp2k.concatenate_segments([seg0, seg1])
    # every step once, 0..total
    assert t["step"].tolist() == list(range(total + 1))
    assert t["positions_A"].shape == (total + 1, 8, 3)
    # the frames before the restart come from seg0, the ones after from seg1
    r = rec["restart_step"]
    np.testing.assert_array_equal(t["positions_A"][:r + 1], part["positions_A"][:r + 1])
    # continuous: the continuation recomputed steps seg0 had already done, and gets them
    # back (positions to 1e-3 Å; only the SCF history of the extrapolation differs)
    again = [st for st in part["step"] if st > r]
    assert again
    idx = np.array(again)
    np.testing.assert_allclose(t["positions_A"][idx], part["positions_A"][idx], atol=1e-3)
    # no jump anywhere: every step moves an atom by less than v_max·dt (10 Å/ps · 1 fs)
    assert np.abs(np.diff(t["positions_A"], axis=0)).max() < 0.01
    # velocities in Å/ps agree with the positions' central differences
    dt = t["frame_dt_ps"]
    assert dt == pytest.approx(0.001)
    cd = (t["positions_A"][2:] - t["positions_A"][:-2]) / (2 * dt)
    np.testing.assert_allclose(cd, t["velocities_A_ps"][1:-1], atol=0.05 * np.abs(cd).max())
    assert t["target_temperature_K"] == 600.0 and t["temperature_K"].shape == (total + 1,)
    # continuing a finished run does nothing
    assert cp2k.continue_aimd(seg1, seg1.parent / "seg2", k["settings"], total) is None


def test_aimd_through_diffusion_analysis(killed_aimd):
    from phonion.diffusion import analyze_trajectory
    from phonion.settings import DiffusionSettings

    t = cp2k.concatenate_segments([killed_aimd["seg0"], killed_aimd["seg1"]])
    assert np.isfinite(t["temperature_K"]).all() and (t["temperature_K"] > 0).all()
    assert np.isfinite(t["potential_energy_eV"]).all()
    out, arrays = analyze_trajectory(t, DiffusionSettings(mobile_ion="Na",
                                                          min_duration_ps=0.001))
    assert out["n_mobile_atoms"] == 4 and out["n_frames"] == killed_aimd["total"] + 1
    assert not out["diffusive"] and out["d_avg_A2_ps"] is None and not out["melted"]
    assert out["diffusion_verdict"].startswith("not resolved in")


def test_check_reports_failures(tmp_path):
    """An unconverged SCF, a missing output and a run killed before its end are
    reported with a reason and never read as forces."""
    engine = get_engine("cp2k")
    prim = bulk("NaCl", "rocksalt", a=A_NACL)
    ok, why = engine.check(tmp_path)
    assert not ok and "no cp2k.out" in why
    s = _settings(max_scf=2, outer_max_scf=1)
    d = tmp_path / "unconv"
    cp2k.write_static(prim, d, s)
    with pytest.raises(DFTRunFailed, match="SCF not converged"):
        cp2k.run(d, s, env=ENV, timeout_s=300)
    # CP2K itself ends normally after it: only phonion's check stops it
    assert "PROGRAM ENDED AT" in (d / cp2k.OUTPUT).read_text()
    with pytest.raises(DFTRunFailed):
        engine.read_forces(d)
    # the same output cut before its end, as a killed job leaves it
    cut = tmp_path / "cut"
    cut.mkdir()
    shutil.copy(d / cp2k.META_FILE, cut)
    text = (d / cp2k.OUTPUT).read_text()
    (cut / cp2k.OUTPUT).write_text(text[:text.index("SCF WAVEFUNCTION OPTIMIZATION")])
    ok, why = engine.check(cut)
    assert not ok and "PROGRAM ENDED" in why


def test_relax_positions(tmp_path):
    """GEO_OPT (BFGS) of 8-atom NaCl with one Na moved 0.05 Å off its site: the run
    checks as converged and read_relaxed puts that Na back on its site."""
    s = _settings(relax_cell=False, relax_max_force_au=1e-3)
    sc = bulk("NaCl", "rocksalt", a=A_NACL, cubic=True)
    at = sc.copy()
    at.positions[0] += [0.05, 0.0, 0.0]
    engine = get_engine("cp2k")
    engine.write_relax(at, tmp_path, s)
    assert "RUN_TYPE GEO_OPT" in (tmp_path / cp2k.INPUT).read_text()
    cp2k.run(tmp_path, s, env=ENV, timeout_s=600)
    assert engine.check(tmp_path) == (True, "")
    relaxed = cp2k.read_relaxed(tmp_path)
    shift = relaxed.positions[0] - relaxed.positions[1] - (sc.positions[0] - sc.positions[1])
    assert np.abs(shift).max() < 0.01
    np.testing.assert_allclose(relaxed.cell[:], sc.cell[:])
    # every BFGS step with its forces and energy (fine-tuning data): a static run on one
    # step's positions gives that step's forces and energy (an independent route)
    path = engine.read_relax_path(tmp_path)
    assert len(path["steps"]) >= 2 and path["symbols"] == at.get_chemical_symbols()
    np.testing.assert_allclose(path["positions_A"][-1], relaxed.positions, atol=1e-9)
    k = 1
    step = at.copy()
    step.positions = path["positions_A"][k]
    forces, energy = _static(step, tmp_path / "static", s)
    np.testing.assert_allclose(path["forces_eV_A"][k], forces, atol=1e-4)
    assert path["energies_eV"][k] == pytest.approx(energy, abs=1e-5)
    assert path["energies_eV"][-1] <= path["energies_eV"][0]


def test_cell_relax_runs_and_unconverged_is_failed(tmp_path):
    """CELL_OPT with the analytical stress tensor (GAPW) runs on primitive NaCl; stopped
    after one BFGS step (MAX_ITER 1), far from converged (the test cutoff's Pulay stress),
    it is reported as a failed relaxation, with the cell trajectory written."""
    s = _settings(relax_cell=True, relax_max_iter=1)
    prim = bulk("NaCl", "rocksalt", a=A_NACL)
    cp2k.write_relax(prim, tmp_path, s)
    text = (tmp_path / cp2k.INPUT).read_text()
    assert "RUN_TYPE CELL_OPT" in text and "STRESS_TENSOR ANALYTICAL" in text
    with pytest.raises(DFTRunFailed, match="relaxation did not converge"):
        cp2k.run(tmp_path, s, env=ENV, timeout_s=600)
    out = (tmp_path / cp2k.OUTPUT).read_text()
    assert "PROGRAM ENDED AT" in out and "STRESS|" in out
    assert (tmp_path / f"{cp2k.PROJECT}-1.cell").is_file()
    with pytest.raises(DFTRunFailed):
        cp2k.read_relaxed(tmp_path)
    # the step's own cell, forces and energy: a static run at that cell gives them
    path = cp2k.read_relax_path(tmp_path)
    assert len(path["steps"]) == 1
    cell = path["cells_A"][0]
    assert abs(np.linalg.det(cell) / prim.get_volume() - 1) > 1e-3  # the cell moved
    step = prim.copy()
    step.set_cell(cell)
    step.positions = path["positions_A"][0]
    forces, energy = _static(step, tmp_path / "static", _settings())
    np.testing.assert_allclose(path["forces_eV_A"][0], forces, atol=1e-4)
    assert path["energies_eV"][0] == pytest.approx(energy, abs=1e-5)


def test_command_and_settings_errors(tmp_path):
    """The run command is an argument list (no shell); a missing binary, basis set or
    potential is a ConfigError naming the setting, before anything runs."""
    from phonion.errors import ConfigError

    s = _settings(command="srun -n 4 'cp2k.psmp'; rm -rf x")
    assert cp2k.run_argv(s) == ["srun", "-n", "4", "cp2k.psmp;", "rm", "-rf", "x", "-i",
                                cp2k.INPUT, "-o", cp2k.OUTPUT]
    prim = bulk("NaCl", "rocksalt", a=A_NACL)
    cp2k.write_static(prim, tmp_path, _settings())
    with pytest.raises(ConfigError, match="dft.cp2k.command"):
        cp2k.start(tmp_path, _settings(command=str(tmp_path / "no-cp2k")))
    with pytest.raises(ConfigError, match="dft.cp2k.basis_sets"):
        cp2k.write_static(prim, tmp_path / "b", _settings(basis_sets={"Na": "NO-SUCH-BASIS"}))
    with pytest.raises(ConfigError, match="dft.cp2k.potentials"):
        cp2k.write_static(prim, tmp_path / "p", _settings(potentials={"Cl": "GTH-PBE-q99"}))


def test_aimd_keeps_cp2k_forces_equal_to_a_static_run_on_the_same_frame(killed_aimd,
                                                                        tmp_path):
    """The AIMD prints CP2K's forces on every frame (training data for the fine-tuning,
    the reference of a committee on MD frames): across the kill and the continuation every
    frame has them, and a static CP2K run on one frame's positions gives the same forces."""
    from ase import Atoms

    from phonion.formats import read_frames_with_forces, write_trajectory

    t = cp2k.concatenate_segments([killed_aimd["seg0"], killed_aimd["seg1"]])
    assert t["forces_eV_A"].shape == t["positions_A"].shape
    k = len(t["step"]) - 2
    frame = Atoms(numbers=t["numbers"], positions=t["positions_A"][k], cell=t["cell_A"],
                  pbc=True)
    static, *_ = _static(frame, tmp_path / "static", killed_aimd["settings"])
    np.testing.assert_allclose(t["forces_eV_A"][k], static, atol=5e-3)  # eV/Å, SCF noise
    assert np.abs(static).max() > 0.05  # real forces, not zeros
    write_trajectory(tmp_path / "trajectory.h5", t)
    kept = read_frames_with_forces(tmp_path / "trajectory.h5", 3)
    np.testing.assert_allclose(kept["forces_eV_A"], t["forces_eV_A"][kept["frames"]],
                               atol=1e-5)
