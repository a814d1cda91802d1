"""Config schema: defaults filled, unknown keys and bad values rejected with the key named."""

from __future__ import annotations

import copy

import pytest
import yaml
from snakemake.utils import validate

from conftest import ROOT, snakemake

SCHEMA = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")


def test_defaults_are_filled():
    cfg = {"structures": {"folder": "x"}}
    validate(cfg, SCHEMA)
    assert cfg["mobile_ion"] == "Na"
    assert cfg["relax"]["fmax_eV_A"] == 0.005
    assert cfg["calculator"]["backend"] == "sevenn"
    assert cfg["structures"]["max_atoms"] == 64


def test_shipped_config_is_valid():
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    validate(copy.deepcopy(cfg), SCHEMA)


@pytest.mark.parametrize("cfg, key", [
    ({"relax": {"fmax": 0.01}}, "fmax"),                       # typo of fmax_eV_A
    ({"relx": {}}, "relx"),                                     # unknown section
    ({"relax": {"fmax_eV_A": -1}}, "fmax_eV_A"),                # bad value
    ({"calculator": {"backend": "lammps"}}, "lammps"),          # unknown backend
    ({"mobile_ion": "sodium"}, "sodium"),                       # not an element symbol
])
def test_bad_config_is_rejected_naming_the_key(cfg, key):
    with pytest.raises(Exception) as err:
        validate(cfg, SCHEMA)
    assert key in str(err.value)


def test_typo_fails_at_parse_time(campaign):
    proc = snakemake(campaign, "-n", check=False,
                     config={"structures": {"folder": "structures"}, "relax": {"fmax": 1}})
    assert proc.returncode != 0
    assert "fmax" in proc.stderr + proc.stdout


def test_bad_override_is_rejected(campaign):
    proc = snakemake(campaign, "-n", check=False, config={
        "structures": {"folder": "structures"},
        "overrides": {"NaCl": {"relax": {"max_steps": 0}}}})
    assert proc.returncode != 0
    assert "max_steps" in proc.stderr + proc.stdout


@pytest.mark.parametrize("edit, words", [
    ({"mobile_ion": "Xx"}, "mobile_ion 'Xx' is not a chemical element"),
    ({"overrides": {"NaCI": {"relax": {"max_steps": 10}}}}, "overrides name NaCI"),
    ({"calculator": {"backend": "sevenn", "model": "7net-mf-ompa"}},
     "would need a download"),
    ({"environments": {"sevenn": "/no/such/python"}}, "environments.sevenn"),
    ({"dft": {"validate": ["NaCI"]}}, "dft.validate names NaCI"),
    ({"dft": {"validate": ["NaCl"], "cp2k": {"cutoff": 300}}}, "dft.cp2k has no setting cutoff"),
    ({"dft": {"aimd": {"materials": ["NaCl"], "temperatures_K": [900]}}},
     "dft.aimd.temperatures_K [900] have no MLP MD"),
    ({"dft": {"validate": ["NaCl"],
              "benchmark_models": [{"backend": "sevenn", "model": "7net-nope"}]}},
     "fix dft.benchmark_models"),
    ({"relax": {"engine": "vasp"}}, "relax.engine vasp but dft.engine cp2k"),
    ({"relax": {"engine": "cp2k"}, "dft": {"cp2k": {"relax_steps": 9}}},
     "dft.cp2k has no setting relax_steps"),
])
def test_semantic_config_errors_fail_at_parse_time(campaign, edit, words):
    proc = snakemake(campaign, "-n", check=False,
                     config={"structures": {"folder": "structures"}, **edit})
    assert proc.returncode != 0
    assert words in proc.stderr + proc.stdout


def test_an_empty_structures_folder_says_what_was_searched(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = snakemake(tmp_path, "-n", check=False, config={"structures": {"folder": "empty"}})
    assert proc.returncode != 0
    assert "structures.folder 'empty' holds 0 structure files" in proc.stderr + proc.stdout


def test_aimd_for_the_top_k_materials_of_the_campaign_table(campaign):
    """dft.aimd.top_k: no AIMD jobs before the campaign table exists; with it, the
    material ranked first gets its aimd job (a dry run lists it), the other none."""
    config = {"structures": {"folder": "structures"},
              "dft": {"aimd": {"top_k": {"descriptor": "ph_msd_mobile_mean_800K_A2",
                                         "k": 1}}}}
    proc = snakemake(campaign, "-n", config=config)
    assert "rule aimd:" not in proc.stdout
    table = campaign / "results/campaign/table.csv"
    table.parent.mkdir(parents=True)
    table.write_text("id,temperature_K,ph_msd_mobile_mean_800K_A2\n"
                     "NaCl,800,0.064\nNa2O,800,0.038\n")
    out = snakemake(campaign, "-n").stdout
    assert "results/materials/NaCl/aimd/800K/aimd.json" in out
    assert "results/materials/Na2O/aimd" not in out
