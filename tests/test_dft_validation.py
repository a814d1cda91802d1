"""MLP-vs-DFT comparison (phonion.dft_validation; issue 14) on force sets with known answers:
a spring network plays DFT, the same network plays a perfect MLP, and a network with every
spring half as stiff plays a soft MLP, whose MSD must come out twice DFT's in the
classical limit. The MSD is checked against phonopy's own thermal displacements."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from phonion import formats
from phonion.campaign.validation import validation_table
from phonion.dft_validation import ValidationError, compare
from phonion.displace import displace
from phonion.formats import ForceSet
from phonion.settings import DftValidationSettings, DisplaceSettings

from conftest import SpringNetwork, forces_of

S = DftValidationSettings(temperatures_K=(800.0,), mesh_length_A=20.0)


@pytest.fixture(scope="module")
def nacl():
    prim = bulk("NaCl", "rocksalt", a=5.64)
    d = displace(prim, DisplaceSettings(min_atoms=60, safety_factor=3.0))
    disp = {"primitive": formats.atoms_to_dict(prim), "unit_matrix": d.choice.unit_matrix.tolist(),
            "dim": d.choice.dim.tolist()}
    u = d.displacements_A
    stiff = forces_of(SpringNetwork(d.supercell, k=2.0).calculator, d.supercell, u)
    soft = forces_of(SpringNetwork(d.supercell, k=1.0).calculator, d.supercell, u)
    zero = np.zeros((len(d.supercell), 3))

    def fs(f):
        return ForceSet(d.supercell, u, f, zero, np.zeros(len(u)))

    return disp, fs(stiff), fs(soft), d


def test_identical_forces_agree_exactly(nacl):
    disp, dft, _, _ = nacl
    out, arrays = compare(disp, dft, dft, S)
    assert out["force_rmse_meV_A"] == 0.0 and out["fc2_rmse_eV_A2"] < 1e-10
    assert out["stability_agrees"] and out["mlp_stable"] and out["dft_stable"]
    assert out["band_rmse_THz"] < 1e-6
    assert out["by_temperature_K"]["800"]["msd_ratio_mlp_dft"] == pytest.approx(1.0, abs=1e-9)
    assert arrays["mlp/path/frequencies_THz"].shape == arrays["dft/path/frequencies_THz"].shape


def test_half_as_stiff_mlp(nacl):
    """Forces halved → force RMSE = half the RMS DFT force, fc2 RMSE = half the RMS fc2,
    MSD ratio 2 up to the quantum correction (ħω/kT ≈ 0.2 at 800 K: < 1 %)."""
    disp, dft, soft, _ = nacl
    out, _ = compare(disp, soft, dft, S)
    assert out["force_rmse_meV_A"] == pytest.approx(0.5 * out["dft_force_rms_meV_A"], rel=1e-9)
    assert out["fc2_relative_rmse"] == pytest.approx(0.5, rel=1e-6)
    ratio = out["by_temperature_K"]["800"]["msd_ratio_mlp_dft"]
    assert 1.97 < ratio < 2.0

    # independent route: phonopy's thermal displacements from the DFT-side fc2
    from phonion.fit_ifc import fit_symfc
    from phonion.harmonic import phonopy_from_displace

    ph = phonopy_from_displace(disp)
    ph.force_constants = fit_symfc(ph, dft.displacements_A, dft.forces_eV_A)
    ph.run_mesh(out["msd_mesh"], with_eigenvectors=True, is_mesh_symmetry=False)
    ph.run_thermal_displacements(temperatures=[800.0], freq_min=1e-3)
    td = np.reshape(ph.thermal_displacements.thermal_displacements[0], (-1, 3))  # Å²
    na = np.array(ph.primitive.symbols) == "Na"
    assert out["by_temperature_K"]["800"]["msd_mobile_dft_A2"] == pytest.approx(
        float(td[na].mean()), rel=2e-3)


def test_fc3_of_a_half_as_stiff_mlp(nacl):
    """With phonons.fc3: both force sets through the same fc2 + fc3 least squares; springs
    half as stiff give fc3 exactly half DFT's (the fit is linear in the forces), relative
    RMSE 0.5; identical sets give 0; too few snapshots give no fc3 numbers and the reason."""
    from phonion.dft_validation import fc3_errors

    _, _, _, d = nacl
    rng = np.random.default_rng(7)
    u = rng.normal(size=(8, len(d.supercell), 3))
    u *= 0.03 / np.linalg.norm(u, axis=2, keepdims=True)
    u = np.concatenate([u, -u])  # ± pairs, as phonion displaces
    stiff = forces_of(SpringNetwork(d.supercell, k=2.0).calculator, d.supercell, u)
    soft = forces_of(SpringNetwork(d.supercell, k=1.0).calculator, d.supercell, u)
    out = fc3_errors(d.supercell, u, soft, stiff, 4.5)
    assert out["fc3_reason"] == "" and out["fc3_n_parameters"] > 0
    assert out["fc3_relative_rmse"] == pytest.approx(0.5, rel=1e-6)
    assert fc3_errors(d.supercell, u, stiff, stiff, 4.5)["fc3_rmse_eV_A3"] < 1e-10
    few = fc3_errors(d.supercell, u[:1], soft[:1], stiff[:1], 8.0)  # 192 for 31 + 534
    assert few["fc3_rmse_eV_A3"] is None and "too few" in few["fc3_reason"]


def test_different_snapshots_are_refused(nacl):
    disp, dft, soft, d = nacl
    moved = ForceSet(soft.supercell, soft.displacements_A * 1.1, soft.forces_eV_A,
                     soft.residual_forces_eV_A, soft.energies_eV)
    with pytest.raises(ValidationError, match="different displacements"):
        compare(disp, moved, dft, S)


def test_table_has_a_row_per_material_and_the_agreement_rate(nacl):
    disp, dft, soft, _ = nacl
    out, _ = compare(disp, soft, dft, S)
    results = [{"material_id": "A", "status": "ok", **out},
               {"material_id": "B", "status": "failed", "reason": "SCF not converged"}]
    table = validation_table(results)
    assert list(table["id"]) == ["A", "B", "agreement"]
    assert table.loc[0, "msd_ratio_mlp_dft_800K"] == pytest.approx(
        out["by_temperature_K"]["800"]["msd_ratio_mlp_dft"])
    assert table.loc[2, "stability_agrees"] == 1.0
    assert table.loc[1, "reason"] == "SCF not converged"


def test_top_k_materials_from_the_campaign_table(tmp_path):
    """dft.aimd.top_k: the k ids with the largest (or smallest) finite value of a table
    column, one value per material; no table yet → none; an unknown column names the
    numeric ones."""
    from phonion.campaign.selection import top_materials
    from phonion.errors import ConfigError

    table = tmp_path / "table.csv"
    assert top_materials(table, "ph_x", 2) == []
    table.write_text("id,temperature_K,ph_x,st_y\n"
                     "A,600,0.5,1\nA,800,0.5,1\nB,800,0.9,\nC,800,,3\nD,800,0.7,2\n"
                     "E,800,nan,4\n")
    assert top_materials(table, "ph_x", 2) == ["B", "D"]
    assert top_materials(table, "ph_x", 5, largest=False) == ["A", "D", "B"]
    assert top_materials(table, "st_y", 1, exclude=("E",)) == ["C"]
    with pytest.raises(ConfigError, match="choose one of: ph_x, st_y"):
        top_materials(table, "ph_z", 1)
