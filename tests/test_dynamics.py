"""Optional MD analyses (g(r), van Hove, reorientation, hops, tetrahedral angles) against
an independent code (ASE's RDF) and analytic results on synthetic trajectories."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.geometry.rdf import get_rdf
from ase.io import read

from phonion.dynamics import (
    analyze_dynamics,
    angular_velocity,
    count_hops,
    find_polyanions,
    first_shell_radius,
    hop_events,
    hop_rotation_coupling,
    rdf,
    reorientation,
    tetrahedral_angles,
    van_hove_distinct,
    van_hove_self,
)
from phonion.settings import DynamicsSettings

from conftest import ROOT

AXIS = (1.0, 2.0, 3.0)  # a generic rotation axis: no Na-P bond lies along it
NA3PS4 = ROOT / "config" / "demo" / "structures" / "Na3PS4-cubic.cif"


def _thermal_nacl(n_frames=5, seed=0):
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat((3, 3, 3))
    rng = np.random.default_rng(seed)
    pos = atoms.positions + rng.normal(0, 0.15, size=(n_frames, len(atoms), 3))
    return atoms, pos


def _rotate(v, phi, axis=(0.0, 0.0, 1.0)):
    """v (…, 3) rotated by phi about ``axis`` (Rodrigues), phi broadcast against v[..., 0]."""
    n = np.asarray(axis, float) / np.linalg.norm(axis)
    c, s = np.cos(phi)[..., None], np.sin(phi)[..., None]
    v = np.asarray(v, float)
    return v * c + np.cross(n, v) * s + np.outer(v @ n, n).reshape(v.shape) * (1 - c)


def test_partial_rdf_agrees_with_ase():
    atoms, pos = _thermal_nacl()
    symbols = np.array(atoms.get_chemical_symbols())
    r, g = rdf(pos, atoms.cell[:], symbols, "Na", "Cl", r_max_A=8.0, bin_A=0.1)
    frames = []
    for p in pos:
        a = atoms.copy()
        a.positions = p
        frames.append(a)
    g_ase, r_ase = get_rdf(frames, 8.0, 80, elements=("Na", "Cl"))
    assert np.allclose(r, r_ase)
    assert np.allclose(g, g_ase, atol=1e-9)
    # A = A: ASE normalises with N², the definition with N(N - 1)
    n = int((symbols == "Na").sum())
    _, g_aa = rdf(pos, atoms.cell[:], symbols, "Na", "Na", r_max_A=8.0, bin_A=0.1)
    g_ase_aa, _ = get_rdf(frames, 8.0, 80, elements=("Na", "Na"))
    assert np.allclose(g_aa * (n - 1) / n, g_ase_aa, atol=1e-9)
    # first Na-Cl shell of rock salt at a/2, its minimum before the second shell
    assert r[np.argmax(g)] == pytest.approx(2.82, abs=0.1)
    assert 2.9 < first_shell_radius(r, g) < 4.9


def test_rdf_of_a_cell_smaller_than_r_max_equals_that_of_its_supercell():
    """Two routes: ASE's neighbour list on the 5.6 Å cell (r_max 8 Å is beyond its width),
    the 27-image route on the 2×2×2 supercell of the same frame. g is intensive."""
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    rng = np.random.default_rng(4)
    atoms.positions += rng.normal(0, 0.1, size=atoms.positions.shape)
    big = atoms.repeat((2, 2, 2))
    s_small = np.array(atoms.get_chemical_symbols())
    s_big = np.array(big.get_chemical_symbols())
    for a, b in (("Na", "Cl"), ("Na", "Na")):
        r, g = rdf(atoms.positions[None], atoms.cell[:], s_small, a, b, 8.0, 0.1)
        _, g_big = rdf(big.positions[None], big.cell[:], s_big, a, b, 8.0, 0.1)
        if a == b:  # N(N - 1) normalisation differs between 4 and 32 Na
            g, g_big = g * 3 / 4, g_big * 31 / 32
        assert np.allclose(g, g_big, atol=1e-9)


def test_rdf_tends_to_one_for_an_ideal_gas():
    rng = np.random.default_rng(1)
    cell = np.eye(3) * 20.0
    pos = rng.uniform(0, 20.0, size=(20, 400, 3))
    r, g = rdf(pos, cell, np.array(["Na"] * 400), "Na", "Na", r_max_A=9.0, bin_A=0.5)
    assert np.mean(g[r > 3]) == pytest.approx(1.0, abs=0.02)


def test_van_hove_distinct_is_the_pair_density_at_zero_lag_and_uniform_without_memory():
    """Seed 002 eq. 8 by two independent routes: at Δt = 0 G_d(r, 0) is (N − 1)/V · g(r)
    of the same frames (phonion's g(r), itself equal to ASE's); for atoms that lose all
    memory between frames (new uniform positions every frame) G_d is flat at (N − 1)/V at
    any lag, including r → 0; and for a rock-salt crystal whose Na ions trade places in a
    ring between two frames, G_d at that lag gains exactly the arrivals at r ≈ 0."""
    atoms, pos = _thermal_nacl(n_frames=4)
    symbols = np.array(atoms.get_chemical_symbols())
    na = symbols == "Na"
    n, volume = int(na.sum()), atoms.get_volume()
    r, gd, _ = van_hove_distinct(pos[:, na], atoms.cell[:], 0.1, np.array([0.0]), 8.0, 0.1)
    _, g = rdf(pos, atoms.cell[:], symbols, "Na", "Na", 8.0, 0.1)
    np.testing.assert_allclose(gd[0], g * (n - 1) / volume, rtol=1e-12, atol=1e-15)
    rng = np.random.default_rng(3)
    gas = rng.uniform(0, 20.0, size=(30, 150, 3))
    r, gd, _ = van_hove_distinct(gas, np.eye(3) * 20.0, 0.1, np.array([0.1, 1.0]), 8.0, 1.0)
    assert gd.mean(axis=1) == pytest.approx([149 / 8000] * 2, rel=0.03)
    # every Na moves onto the site of the next Na in a ring between frame 0 and frame 1
    base = atoms.positions[na]
    moved = np.roll(base, 1, axis=0)
    x = np.stack([base, moved, moved])
    r, gd, _ = van_hove_distinct(x, atoms.cell[:], 1.0, np.array([0.0, 1.0]), 6.0, 0.1)
    assert gd[0, r < 1.0].sum() == 0  # no two Na on one site at the same time
    shell = 4 / 3 * np.pi * np.diff(np.arange(0, 6.05, 0.1) ** 3)
    # at lag 1 (two origins, one with the ring move, one without) half the ions arrive on
    # an occupied-earlier site: one other ion within 1 Å per ion per moving origin
    assert (gd[1, r < 1.0] * shell[r < 1.0]).sum() == pytest.approx(0.5)


def test_van_hove_self_of_a_random_walk_is_the_analytic_gaussian():
    """Brownian motion: G_s(r, t) = (4πDt)^(-3/2) exp(-r²/4Dt), seed 002 eq. 9."""
    rng = np.random.default_rng(2)
    d, dt, walkers = 0.2, 0.05, 2000
    steps = rng.normal(0, np.sqrt(2 * d * dt), size=(200, walkers, 3))
    x = np.concatenate([np.zeros((1, walkers, 3)), np.cumsum(steps, axis=0)])
    lags = np.array([1.0, 4.0])
    r, gs = van_hove_self(x, dt, lags, r_max_A=8.0, bin_A=0.2)
    shell = 4.0 / 3.0 * np.pi * ((r + 0.1) ** 3 - (r - 0.1) ** 3)
    for k, t in enumerate(lags):
        analytic = (4 * np.pi * d * t) ** -1.5 * np.exp(-(r**2) / (4 * d * t))
        p, p_exact = gs[k] * shell, analytic * shell
        assert p.sum() == pytest.approx(1.0, abs=1e-3)
        assert (r**2 * p).sum() == pytest.approx(6 * d * t, rel=0.05)
        # each bin within 5 binomial standard errors; independent samples: one per walker
        # and non-overlapping lag segment
        n_eff = walkers * (len(x) * dt / t - 1)
        assert np.all(np.abs(p - p_exact) < 5 * np.sqrt(p_exact / n_eff) + 1e-4)


def test_reorientation_of_a_uniform_rotation_is_cos_omega_t():
    omega, dt = 2.0, 0.01  # rad/ps, ps
    t = np.arange(600) * dt
    v0 = np.array([[1.0, 0, 0], [0, 1.0, 0], [-0.6, 0.8, 0]])
    vec = np.stack([_rotate(v0, omega * tt) for tt in t])
    assert np.allclose(reorientation(vec), np.cos(omega * t), atol=1e-9)
    # static vectors never decorrelate
    assert np.allclose(reorientation(np.repeat(v0[None], 50, axis=0)), 1.0)


def test_hop_functional_flags_one_long_lived_jump():
    dt = 0.1
    x = np.zeros((200, 2, 3))
    x[100:, 0, 0] = 4.0  # atom 0 hops 4 Å at t = 10 ps and stays; atom 1 rattles
    x[:, 1, 0] = 0.5 * np.sin(np.arange(200))
    h, step = hop_events(x, dt, a_A=3.8, residence_ps=3.0, window_ps=9.0, resolution_ps=0.1)
    assert step == dt
    assert count_hops(h) == 1
    hit = np.nonzero(h[:, 0])[0]
    assert hit.min() <= 100 <= hit.max() and not h[:, 1].any()
    # a jump that returns after 1 ps is not long-lived
    x[110:, 0, 0] = 0.0
    assert count_hops(hop_events(x, dt, 3.8, 3.0, 9.0)[0]) == 0
    # the same jump seen on a 10× finer frame grid, subsampled to 0.1 ps: the same answer
    fine = np.repeat(x, 10, axis=0)
    fine[1000:1100, 0, 0] = 4.0
    fine[1100:, 0, 0] = 0.0
    h_fine, step = hop_events(fine, dt / 10, 3.8, 3.0, 9.0, resolution_ps=0.1)
    assert step == pytest.approx(dt) and count_hops(h_fine) == 0


def test_polyanions_of_na3ps4_and_none_in_rock_salt():
    atoms = read(NA3PS4)
    units = find_polyanions(atoms.positions[None], atoms.cell[:],
                            np.array(atoms.get_chemical_symbols()), "Na")
    assert [u.name for u in units] == ["PS4"]
    vec = units[0].vectors(atoms.positions[None])
    assert np.allclose(np.linalg.norm(vec, axis=-1), np.linalg.norm(vec, axis=-1)[0, 0],
                       atol=1e-3)  # four equal P-S bonds, all minimum images
    nacl, pos = _thermal_nacl(1)
    assert find_polyanions(pos, nacl.cell[:], np.array(nacl.get_chemical_symbols()),
                           "Na") == []


def test_tetrahedral_angles_and_angular_velocity():
    regular = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float)
    theta = tetrahedral_angles(regular[None, None])
    assert theta.shape == (1, 1, 12) and np.allclose(theta, 60.0)
    # stretch one vertex: angles computed by hand with the law of cosines
    v = regular.copy()
    v[0] *= 1.5
    th = tetrahedral_angles(v[None, None])[0, 0]
    e01, e12 = np.linalg.norm(v[1] - v[0]), np.linalg.norm(v[2] - v[1])
    at0 = np.degrees(np.arccos((2 * e01**2 - e12**2) / (2 * e01**2)))
    assert np.isclose(th, at0).sum() == 3  # the three angles at the moved vertex
    assert th.sum() == pytest.approx(4 * 180.0)  # each face's angles sum to 180°
    # eq. 5 on θ(t) = θ0 + A sin(2π f t): ω = 2π f A cos(2π f t), unfiltered
    dt, f, amp = 0.01, 0.5, 3.0
    t = np.arange(1000) * dt
    th_t = 60 + amp * np.sin(2 * np.pi * f * t)
    w = angular_velocity(th_t, dt, cutoff_cm1=None)
    assert np.allclose(w, 2 * np.pi * f * amp * np.cos(2 * np.pi * f * t[1:-1]), rtol=1e-3,
                       atol=1e-3)
    # the 5 cm⁻¹ (0.15 THz) filter of the paper removes this 0.5 THz libration
    assert np.abs(angular_velocity(th_t, dt, 5.0)).max() < 0.05 * 2 * np.pi * f * amp


def _rotating_na3ps4(n_frames=120, dt=0.05, omega=1.5, seed=3):
    """Na3PS4 whose PS4 units rotate rigidly about one axis, with the Na in the first shell of
    the P either riding along (coupled) or sitting still (uncoupled)."""
    atoms = read(NA3PS4)
    symbols = np.array(atoms.get_chemical_symbols())
    units = find_polyanions(atoms.positions[None], atoms.cell[:], symbols, "Na")
    pos = np.repeat(atoms.positions[None], n_frames, axis=0).copy()
    rng = np.random.default_rng(seed)
    phi = omega * np.arange(n_frames) * dt + 0.3 * np.sin(np.arange(n_frames) * 0.7)
    u = units[0]
    vec0 = u.vectors(atoms.positions[None])[0]
    for k, c in enumerate(u.centres):
        for li, lig in enumerate(u.ligands[k]):
            pos[:, lig] = (atoms.positions[c] + _rotate(vec0[k, li], phi, AXIS)
                           - u.shifts_A[k, li])
    pos += rng.normal(0, 1e-3, size=pos.shape)
    return atoms, symbols, pos, u, phi, dt


def test_hop_rotation_coupling_separates_coupled_from_still_ions():
    atoms, symbols, pos, unit, phi, dt = _rotating_na3ps4()
    mobile = np.nonzero(symbols == "Na")[0]
    still = hop_rotation_coupling(pos, atoms.cell[:], unit, mobile, shell_A=4.0)
    assert still["n_events"] > 0 and abs(still["mean_pearson"]) < 0.3
    # let every Na ride with the rotation of its nearest P (a paddle wheel)
    cell = atoms.cell[:]
    ridden = pos.copy()
    for m in mobile:
        d = atoms.positions[m] - atoms.positions[unit.centres]
        d -= np.rint(d @ np.linalg.inv(cell)) @ cell
        k = int(np.argmin(np.linalg.norm(d, axis=1)))
        ridden[:, m] = atoms.positions[unit.centres[k]] + _rotate(d[k], phi, AXIS)
    coupled = hop_rotation_coupling(ridden, cell, unit, mobile, shell_A=4.0)
    assert coupled["mean_pearson"] > 0.9


def test_analyze_dynamics_runs_every_analysis():
    atoms, symbols, pos, unit, phi, dt = _rotating_na3ps4()
    traj = {"numbers": atoms.numbers, "positions_A": pos, "cell_A": atoms.cell[:],
            "frame_dt_ps": dt}
    settings = DynamicsSettings(rdf=True, van_hove=True, reorientation=True, tetrahedra=True,
                                r_max_A=5.0, max_frames=20, van_hove_lags=4,
                                angle_filter_cm1=None)
    out, arrays = analyze_dynamics(traj, settings)
    assert out["polyanions"] == ["PS4"]
    assert out["rotating_PS4"] and out["reorientation_C_half_run_PS4"] < 0.9
    assert out["rotation_diffusion_category"] == 2  # the Na of this run stand still
    assert out["tetrahedral_angle_mean_PS4_deg"] == pytest.approx(60.0, abs=0.1)
    assert arrays["van_hove/G_s_A-3"].shape == (4, 100)
    assert {"rdf/Na-P", "rdf/Na-S", "rdf/Na-Na"} <= set(arrays)


def test_rotation_diffusion_categories_of_seed_001():
    """Fig. 2a's categories on cubic Na3PS4 runs built to be each: PS4 rotating with the Na
    still (2), rotating with the Na walking 3 Å per 0.75 ps (1), PS4 and Na still (3), and
    the P atoms themselves wandering off (a melted framework: no category)."""
    from phonion.dynamics import rotation_diffusion_category

    atoms, symbols, pos, unit, phi, dt = _rotating_na3ps4()
    s = DynamicsSettings(reorientation=True)
    c = float(reorientation(unit.vectors(pos))[len(pos) // 2].min())
    scalars = {"reorientation_C_half_run_PS4": c}
    cat = rotation_diffusion_category(pos, symbols, "Na", [unit], scalars, s)
    assert cat["rotation_diffusion_category"] == 2 and cat["mobile_tmsd_A2"] < 0.01
    walking = pos.copy()
    na = symbols == "Na"
    walking[:, na] += np.arange(len(pos))[:, None, None] * dt * np.array([4.0, 0.0, 0.0])
    cat = rotation_diffusion_category(walking, symbols, "Na", [unit], scalars, s)
    assert cat["rotation_diffusion_category"] == 1 and cat["mobile_tmsd_A2"] > 5.0
    still = np.repeat(atoms.positions[None], len(pos), axis=0)
    cat = rotation_diffusion_category(still, symbols, "Na", [unit],
                                      {"reorientation_C_half_run_PS4": 1.0}, s)
    assert cat["rotation_diffusion_category"] == 3
    assert cat["framework_cation_tmsd_A2"] == pytest.approx(0, abs=1e-9)
    melted = pos.copy()
    melted[:, symbols == "P"] += np.arange(len(pos))[:, None, None] * dt * 4.0
    cat = rotation_diffusion_category(melted, symbols, "Na", [unit], scalars, s)
    assert cat["framework_melted"] and cat["rotation_diffusion_category"] is None
    assert rotation_diffusion_category(pos, symbols, "Na", [], {}, s)[
        "rotation_diffusion_category"] is None


def test_mlp_against_aimd_structure_comparison_tells_equal_runs_from_different_ones(tmp_path):
    """Seed 002's MLMD-vs-AIMD comparison (phonion.aimd_validation.compare_structure) on two
    rigid-ion NaCl runs: a run against itself agrees exactly (g(r) and G_d differences 0,
    VDOS and G_s overlaps 1); a 300 K run against a 1200 K one does not."""
    from phonion.aimd_validation import compare
    from phonion.diffusion import analyze_trajectory
    from phonion.formats import read_trajectory
    from phonion.md import run_md
    from phonion.potentials import RigidIonPotential
    from phonion.settings import DiffusionSettings, MDSettings

    atoms = bulk("NaCl", "rocksalt", a=5.75) * (2, 2, 2)
    runs = {}
    for T in (300.0, 1200.0):
        s = MDSettings(temperature_K=T, equilibration_steps=100, production_steps=400,
                       interval=2, timestep_fs=2.0, seed=1, initial_state="maxwell_boltzmann")
        run_md(atoms, RigidIonPotential(cutoff_A=6.0), s, tmp_path / f"{T:g}.h5", log=None)
        runs[T] = read_trajectory(tmp_path / f"{T:g}.h5")
    ds = DiffusionSettings(mobile_ion="Na", min_duration_ps=0.0)
    res, arr = analyze_trajectory(runs[300.0], ds)
    same, curves = compare(runs[300.0], res, arr, ds, mlp_traj=runs[300.0])
    assert same["rdf_rms_difference_Na-Cl"] == 0 and same["van_hove_distinct_rms_difference"] == 0
    assert same["vdos_overlap_mobile"] == pytest.approx(1.0)
    assert same["van_hove_self_overlap"] == pytest.approx(1.0)
    assert "structure/rdf/aimd/Na-Cl" in curves
    hot, _ = compare(runs[1200.0], res, arr, ds, mlp_traj=runs[300.0])
    assert hot["rdf_rms_difference_Na-Cl"] > 0.1
    assert hot["van_hove_self_overlap"] < 0.8 and hot["vdos_overlap_mobile"] < 0.95


def test_tetrahedral_angle_distributions_of_two_runs_are_compared():
    """Seed 002 compares ρ(θ) inside the PS4 tetrahedra between MLMD and AIMD: a run
    against itself overlaps fully; against a run whose tetrahedra are squashed along one
    axis, much less."""
    from phonion.aimd_validation import _angle_overlaps

    atoms, symbols, pos, unit, phi, dt = _rotating_na3ps4(n_frames=40)
    traj = {"numbers": atoms.numbers, "positions_A": pos, "cell_A": atoms.cell[:]}
    arrays: dict = {}
    same = _angle_overlaps({"mlp": traj, "aimd": traj}, "Na", arrays)
    assert same["tetrahedral_angle_overlap_PS4"] == pytest.approx(1.0)
    squashed = pos.copy()
    vec = unit.vectors(pos)
    for k, c in enumerate(unit.centres):
        for li, lig in enumerate(unit.ligands[k]):
            squashed[:, lig] = pos[:, c] + vec[:, k, li] * [1.0, 1.0, 0.6] - unit.shifts_A[k, li]
    other = _angle_overlaps({"mlp": {**traj, "positions_A": squashed}, "aimd": traj}, "Na",
                            arrays)
    assert other["tetrahedral_angle_overlap_PS4"] < 0.5
    assert "angles/mlp/PS4" in arrays
