"""The mobile-ion probability density and the dimensionality of its paths
(phonion.density, seed 000 §3.4) against pymatgen-analysis-diffusion and known geometries."""

from __future__ import annotations

import json

import numpy as np
import pytest

from phonion.density import (
    KB_EV_K,
    percolation,
    periodic_dimensionality,
    probability_density,
)

from conftest import SHARED_DATA

ARGYRODITE = SHARED_DATA / "kinisi-Li6PS5Cl-aimd" / "XDATCAR.gz"


@pytest.mark.skipif(not ARGYRODITE.is_file(), reason="no shared AIMD data")
def test_density_equals_pymatgen_on_a_real_aimd_trajectory():
    """kinisi's Li6PS5Cl VASP AIMD (416 atoms, 140 frames, 192 Li): the same density as
    pymatgen-analysis-diffusion's ProbabilityDensityAnalysis, grid point for grid point, on
    a grid whose spacing divides the cell (so both grids are the same)."""
    from pymatgen.analysis.diffusion.aimd.pathway import ProbabilityDensityAnalysis
    from pymatgen.core import Lattice, Structure

    from phonion.dft import vasp
    from phonion.geometry import symbols_of

    t = vasp.read_trajectory(ARGYRODITE, frame_dt_ps=0.1, temperature_K=700.0)
    frac_all = t["positions_A"] @ np.linalg.inv(t["cell_A"])
    frac = frac_all[::4]  # 35 frames: pymatgen loops in Python
    symbols = symbols_of(t["numbers"])
    li = symbols == "Li"
    # the run's cell is cubic to 1e-5 (lengths 20.31231-20.31242 Å): exactly cubic here, so
    # that pymatgen's grid (multiples of spacing/length) and ours (1/n) are the same points
    cell = np.eye(3) * np.linalg.norm(t["cell_A"], axis=1).mean()
    n = 20
    spacing = cell[0, 0] / n * (1 + 1e-12)
    ours = probability_density(frac[:, li], cell, (n, n, n))
    structure = Structure(Lattice(cell), list(symbols), frac[0])
    ref = ProbabilityDensityAnalysis(structure, frac.copy(), interval=spacing, species=["Li"])
    assert ref.Pr.shape == ours.shape
    np.testing.assert_allclose(ours, ref.Pr, rtol=1e-12, atol=1e-12)
    assert np.sum(ours) * abs(np.linalg.det(cell)) / ours.size == pytest.approx(1.0)
    # Li in argyrodite moves along a 3D network of cages at 700 K (kinisi's example system)
    full = probability_density(frac_all[:, li], t["cell_A"], (n, n, n))
    out = percolation(full, 700.0)
    assert out["dimensionality"] == 3
    b = [out[f"percolation_barrier_{d}d_eV"] for d in (1, 2, 3)]
    assert 0 < b[0] <= b[1] <= b[2]
    # the workflow's grid (0.25 Å) on frames 0.1 ps apart: the hops between frames are
    # filled in, and the paths still percolate in 3D, below 0.5 eV
    from phonion.density import density_analysis

    res, grids = density_analysis(t, "Li", 700.0, 0.25)
    assert res["density_substeps"] > 1 and res["density_dimensionality"] == 3
    assert 0.1 < res["density_percolation_barrier_1d_eV"] <= res[
        "density_percolation_barrier_3d_eV"] < 0.5
    np.testing.assert_allclose(grids["density/P_A-3"].sum() * abs(np.linalg.det(
        t["cell_A"])) / grids["density/P_A-3"].size, 1.0)


def test_periodic_dimensionality_of_pockets_channels_layers_and_networks():
    n = 12
    empty = np.zeros((n, n, n), bool)
    pocket = empty.copy()
    pocket[3:6, 3:6, 3:6] = True
    assert periodic_dimensionality(pocket) == 0
    assert periodic_dimensionality(empty) == 0
    channel = empty.copy()
    channel[4, 4, :] = True  # along c
    assert periodic_dimensionality(channel) == 1
    almost = channel.copy()
    almost[4, 4, 7] = False  # one voxel missing: no longer through the cell
    assert periodic_dimensionality(almost) == 0
    layer = empty.copy()
    layer[:, :, 2] = True
    assert periodic_dimensionality(layer) == 2
    network = channel | np.moveaxis(channel, 2, 0) | np.moveaxis(channel, 2, 1)
    assert periodic_dimensionality(network) == 3
    # a staircase that wraps diagonally, crossing both the a and the b face: one direction
    stair = empty.copy()
    for i in range(n):
        stair[i, i, 5] = stair[i, (i + 1) % n, 5] = True
    assert periodic_dimensionality(stair) == 1
    # two parallel channels along a and one along b that never touch them: still 1
    apart = empty.copy()
    apart[:, 2, 2] = apart[:, 8, 2] = apart[6, :, 8] = True
    assert periodic_dimensionality(apart) == 1


def test_percolation_barriers_from_the_boltzmann_inverted_density():
    """Sites of density 1 joined by channels along a of density e^-2 and along b of density
    e^-5 (in units of k_B T): ΔF_1D = 2 k_B T, ΔF_2D = 5 k_B T, no 3D path."""
    n, T = 12, 600.0
    rho = np.zeros((n, n, n))
    rho[:, 3, 3] = np.exp(-2.0)
    rho[3, :, 3] = np.exp(-5.0)
    rho[3, 3, 3] = 1.0
    rho[9, 3, 3] = 1.0
    out = percolation(rho, T)
    assert out["dimensionality"] == 2
    assert out["percolation_barrier_1d_eV"] == pytest.approx(2 * KB_EV_K * T)
    assert out["percolation_barrier_2d_eV"] == pytest.approx(5 * KB_EV_K * T)
    assert out["percolation_barrier_3d_eV"] is None


def test_density_md_committee_and_anharmonic_columns_reach_the_table_and_summary(tmp_path):
    """Per MD temperature: the dynamics stage's density, the MD committee and the diffusion
    stage's anharmonic descriptors land in the row of that temperature; the model gets the
    anharmonic feature families."""
    from test_campaign_table import _material

    from phonion.campaign.model import feature_sets
    from phonion.campaign.summary import material_lines
    from phonion.campaign.table import build_table, collect, descriptor_columns
    from phonion.formats import new_result, write_result

    files = _material(tmp_path, "A", "NaCl", 0.02, 0.01)

    def put(stage, **kw):
        path = tmp_path / "materials" / "A" / stage / "800K" / f"{stage}.json"
        write_result(path, new_result("A", stage, "ok", temperature_K=800.0, **kw))
        files.append(path)

    put("dynamics", density_dimensionality=2, density_percolation_barrier_1d_eV=0.21,
        density_percolation_barrier_2d_eV=0.34, density_percolation_barrier_3d_eV=None)
    put("md_committee", force_disagreement_relative=0.2, force_disagreement_rms_meV_A=80.0,
        ratio_to_snapshots=2.5, extrapolating=True)
    put("aimd_validation", d_ratio_mlp_aimd=None, msd_ratio_mlp_aimd=0.9,
        vdos_overlap_mobile=0.83, van_hove_self_overlap=0.71, **{
            "rdf_rms_difference_Na-Cl": 0.12, "rdf_rms_difference_Na-Na": 0.2})
    # the diffusion result of _material, with anharmonic descriptors added
    diff = tmp_path / "materials" / "A" / "diffusion" / "800K" / "diffusion.json"
    res = json.loads(diff.read_text())
    res["anharmonic"] = {"cv_all_kB_atom": 2.9, "lindemann_host": 0.08}
    res["msd_md_over_harmonic"] = 1.31
    diff.write_text(json.dumps(res))
    table, _ = build_table(collect(files))
    row = table.set_index("id").loc["A"]
    assert row["density_dimensionality"] == 2
    assert row["percolation_barrier_2d_eV"] == 0.34 and np.isnan(row["percolation_barrier_3d_eV"])
    assert row["md_force_disagreement_relative"] == 0.2 and row["md_extrapolating"]
    assert row["md_disagreement_over_snapshots"] == 2.5
    assert row["an_cv_all_kB_atom"] == 2.9 and row["an_lindemann_host"] == 0.08
    text = "\n".join(material_lines(table, 800.0, 10))
    assert "mobile-ion paths 2D in the MD at 800 K (percolation barrier 0.34 eV)" in text
    assert "the models extrapolate in this MD (forces differ by 20 % on its frames)" in text
    assert "MD vibration 1.31× the harmonic MSD of the same modes" in text
    assert row["aimd_rdf_rms_difference_max"] == 0.2 and row["aimd_vdos_overlap_mobile"] == 0.83
    assert "MLP MD vs AIMD: mobile-ion VDOS overlap 0.83, G_s overlap 0.71" in text
    cols = descriptor_columns(table)
    assert "an_cv_all_kB_atom" in cols
    sets = feature_sets(cols)
    assert sets["anharmonic"] == ["an_cv_all_kB_atom", "an_lindemann_host"]
    assert set(sets["anharmonic"]) < set(sets["all_anharmonic"]) and "all" in sets
