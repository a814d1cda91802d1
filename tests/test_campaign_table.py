"""The campaign table: flagged runs never enter fits by default, an external D table merges
by source, structure descriptors of a known crystal, and the n valid = 0 statements."""

from __future__ import annotations

import json

import numpy as np
import pytest

from phonion.campaign.io import finite
from phonion.campaign.summary import summary_markdown
from phonion.campaign.table import build_table, collect, descriptor_columns, pick_temperature
from phonion.formats import new_result, write_result
from phonion.settings_campaign import CampaignStatisticsSettings

from conftest import DEMO

QUICK = CampaignStatisticsSettings(n_bootstrap=100)  # fewer resamples: a faster test


def _material(root, mid, formula, msd, d_A2_ps, too_short=False, melted=False, T=800.0):
    """Stage results of one material as the stages write them."""
    folder = root / "materials" / mid
    files = []

    def put(stage, res, sub=""):
        path = folder / stage / sub / f"{stage}.json"
        write_result(path, res)
        files.append(path)

    put("intake", new_result(mid, "intake", "ok", primitive={"formula": formula,
                                                             "spacegroup": "Fm-3m"}))
    model = {"backend": "sevenn", "name": "7net-0", "sha256": "abc"}
    put("relax", new_result(mid, "relax", "ok", spacegroup_final="Fm-3m",
                            provenance={"model": model}))
    put("structure_descriptors", new_result(mid, "structure_descriptors", "ok",
                                            descriptors={"mobile_cn": 6.0}, spacegroup_number=225))
    put("stability", new_result(mid, "stability", "ok", stable=True, lowest_frequency_THz=0.1))
    put("phonon_descriptors", new_result(
        mid, "phonon_descriptors", "ok", acoustic_cutoff_THz=3.0 + msd,
        by_temperature_K={"800": {"msd_mobile_mean_A2": msd}}))
    status = "failed" if melted else "ok"
    put("diffusion", new_result(
        mid, "diffusion", status, "", temperature_K=T, d_avg_A2_ps=d_A2_ps,
        d_avg_ci95_A2_ps=[0.5 * d_A2_ps, 1.5 * d_A2_ps], d_max_direction_A2_ps=2 * d_A2_ps,
        d_max_direction_ci95_A2_ps=[d_A2_ps, 3 * d_A2_ps], too_short=too_short, melted=melted,
        vdos_centre_mobile_THz=5.0), f"{T:g}K")
    put("arrhenius", new_result(mid, "arrhenius", "ok"))
    return files


@pytest.fixture
def results(tmp_path):
    files = []
    files += _material(tmp_path, "A", "NaCl", 0.02, 0.01)
    files += _material(tmp_path, "B", "Na2S", 0.04, 0.05, too_short=True)
    files += _material(tmp_path, "C", "Na2O", 0.03, 0.03, melted=True)
    files += _material(tmp_path, "D", "NaF", 0.01, 0.002)
    return collect(files)


def test_flagged_runs_never_enter_fits_by_default(results):
    table, note = build_table(results)
    row = table.set_index("id")
    assert row.loc["A", "d_valid"] and row.loc["D", "use_in_fits"]
    assert row.loc["B", "too_short"] and not row.loc["B", "use_in_fits"]
    assert row.loc["C", "melted"] and not row.loc["C", "use_in_fits"]
    assert (note["n_valid"], note["n_flagged"], note["n_use_in_fits"]) == (2, 2, 2)
    # numbers and units: D in cm²/s (1 Å²/ps = 1e-4 cm²/s), interval kept, model recorded
    assert row.loc["A", "d_avg_cm2_s"] == pytest.approx(1e-6)
    assert row.loc["A", "d_avg_ci95_high_cm2_s"] == pytest.approx(1.5e-6)
    assert row.loc["A", "log10_d_max_cm2_s"] == pytest.approx(np.log10(2e-6))
    assert row.loc["A", "ph_msd_mobile_mean_800K_A2"] == 0.02
    assert row.loc["A", "st_mobile_cn"] == 6.0 and row.loc["A", "model_sha256"] == "abc"
    assert "ph_msd_mobile_mean_800K_A2" in descriptor_columns(table)
    # the key that lets them in: only the too_short and melted runs change
    table2, note2 = build_table(results, include_flagged=True)
    assert table2["use_in_fits"].all() and note2["n_valid"] == 2
    assert not table2.set_index("id").loc["B", "d_valid"]


def test_no_long_range_diffusion_gives_no_d(tmp_path):
    """The issue-12 diffusion result: the ion never left its plateau, D is None with an
    upper bound; such a run never counts as a D, not even with include_flagged."""
    files = _material(tmp_path, "A", "NaCl", 0.02, 0.01)
    res = new_result("A", "diffusion", "ok", "Na: no long-range diffusion detected",
                     temperature_K=800.0, diffusive=False, d_avg_A2_ps=None,
                     d_avg_ci95_A2_ps=None, d_avg_upper_bound_A2_ps=0.003,
                     d_max_direction_A2_ps=None, too_short=False, melted=False)
    assert files[5].parent.name == "800K"
    write_result(files[5], res)
    for include in (False, True):
        table, note = build_table(collect(files), include_flagged=include)
        row = table.iloc[0]
        assert not row["diffusive"] and not row["d_valid"] and not row["use_in_fits"]
        assert np.isnan(row["d_avg_cm2_s"])
        assert row["d_avg_upper_bound_cm2_s"] == pytest.approx(3e-7)
        assert note["n_not_diffusive"] == 1 and note["n_valid"] == 0


def test_external_table_merges_marked_by_source(results, tmp_path):
    from phonion.campaign.table import read_external

    ext = tmp_path / "aimd.csv"
    ext.write_text("id,temperature_K,d_cm2_s,d_ci95_low_cm2_s,d_ci95_high_cm2_s,source\n"
                   "B,800,3e-6,2e-6,4e-6,AIMD (elsewhere)\n"
                   "A,600,1e-7,,,literature\n"
                   "unknown,800,1e-6,,,literature\n")
    table, note = build_table(results, external=read_external(ext))
    assert note["external_rows"] == 2 and note["external_unmatched"] == ["unknown"]
    aimd = table[table["d_source"] == "AIMD (elsewhere)"].iloc[0]
    assert aimd["id"] == "B" and aimd["d_valid"] and aimd["use_in_fits"]
    assert aimd["d_avg_ci95_low_cm2_s"] == pytest.approx(2e-6)
    # the external row carries the material's descriptors
    assert aimd["ph_msd_mobile_mean_800K_A2"] == 0.04
    assert len(table[table["id"] == "B"]) == 2  # its flagged MD row stays, flagged
    lit = table[table["d_source"] == "literature"].iloc[0]
    assert lit["temperature_K"] == 600 and np.isnan(lit["d_avg_ci95_low_cm2_s"])
    assert pick_temperature(table) == 800.0  # A, D and B's external D
    bad = tmp_path / "bad.csv"
    bad.write_text("id,temperature_K,D\nA,800,1\n")
    with pytest.raises(ValueError, match="source"):
        read_external(bad)


def test_no_valid_d_is_said_plainly(results, tmp_path):
    from phonion.campaign.figures import campaign_figures
    from phonion.campaign.statistics import campaign_statistics

    table, note = build_table({k: v for k, v in results.items() if k in ("B", "C")})
    assert note["n_valid"] == 0
    stats, _ = campaign_statistics(table, descriptor_columns(table), QUICK)
    assert stats["versus_d"]["800"]["D_avg"]["skipped"].startswith("n valid = 0: skipped")
    model = {"skipped": "n valid = 0 materials"}
    clu = {"skipped": "2 materials"}
    text = summary_markdown(note, finite(stats), clu, model, [])
    assert "800 K: n valid = 0" in text and "Skipped: n valid = 0 materials" in text
    names = campaign_figures(table, finite(stats), clu, [], model, [], 800.0, "viridis",
                             tmp_path / "figures")
    assert {"fig2_d_vs_msd.png", "correlations_with_d.png", "model_parity.png"} <= set(names)
    svg = (tmp_path / "figures" / "fig2_d_vs_msd.svg").read_text()
    assert "skipped" in svg  # the statement, not plateau values
    json.dumps(finite(stats), allow_nan=False)


def test_summary_says_per_material_what_was_found_first(results, tmp_path):
    """Issue 24: the first screen is the screen outcome and the ranked materials; pairs of
    variants of one quantity are grouped, not findings; an analysis that failed is named
    and the others are still reported."""
    from phonion.campaign.families import family
    from phonion.campaign.statistics import campaign_statistics

    table, note = build_table(results)
    stats, _ = campaign_statistics(table, descriptor_columns(table), QUICK)
    model = {"stage": "campaign_model", "status": "error",
             "reason": "ValueError: Found array with 0 feature(s)"}
    clu = {"skipped": "4 materials"}
    text = summary_markdown(note, finite(stats), clu, model, [], top=3, table=table)
    head = text.split("## Diffusion")[0]
    assert "4 materials: 4 passed the dynamic-stability screen" in head
    rows = [line.split(" | ")[0].strip("| ") for line in head.splitlines()
            if line.startswith("| ") and not line.startswith("| material")]
    assert rows == ["A", "D", "B"]  # valid D first (A 1e-6 > D 2e-7), then by MSD: B > C
    assert "too short" in head and "first 3 of 4" in head
    assert "Not available: campaign_model error: ValueError" in text
    assert "## Correlations with D" in text and "Skipped: 4 materials" in text
    assert family("ph_msd_mobile_max_800K_A2") == family("ph_msd_mobile_mean_300K_A2")
    assert family("el_bulk_modulus_voigt_GPa") == "el_bulk_modulus_GPa"


def test_structure_descriptors_of_rock_salt():
    from pymatgen.core import Structure

    from phonion.structure_descriptors import structure_descriptors

    nacl = Structure.from_file(DEMO / "NaCl.cif")
    out = structure_descriptors(nacl.get_primitive_structure())
    d = out["descriptors"]
    a = nacl.lattice.a
    assert out["spacegroup"] == "Fm-3m" and out["spacegroup_number"] == 225
    assert d["mobile_cn"] == pytest.approx(6.0)
    assert d["volume_per_atom_A3"] == pytest.approx(a**3 / 8)
    assert d["number_density_per_A3"] == pytest.approx(8 / a**3)
    assert d["mobile_nearest_neighbour_A"] == pytest.approx(a / 2)
    assert d["mean_electronegativity_pauling"] == pytest.approx((0.93 + 3.16) / 2)
    assert d["mean_electron_count"] == pytest.approx((11 + 17) / 2)
    # Shannon radii of Na+ (VI, 1.02 Å) and Cl− (1.81 Å) in pymatgen's average ionic radii
    assert 0.5 < d["packing_fraction"] < 0.75
