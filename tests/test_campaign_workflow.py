"""The campaign analysis inside the workflow: a real two-material campaign with the analytic
potential, then dry runs showing that a campaign key reruns only campaign rules."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_workflow import _planned

from conftest import RIGID, snakemake

pytestmark = pytest.mark.slow

CAMPAIGN_RULES = {"campaign_table", "campaign_statistics", "campaign_clustering",
                  "campaign_model", "campaign_figures", "campaign_summary"}


def test_campaign_keys_rerun_only_campaign_rules(campaign):
    config = {**RIGID, "structures": {"folder": "structures"},
              "phonons": {"min_atoms": 32, "temperatures_K": [800]},
              "campaign": {"n_bootstrap": 200}}
    snakemake(campaign, "--cores", "2", config=config)
    assert _planned(campaign, config) == {}
    out = campaign / "results" / "campaign"
    table = pd.read_parquet(out / "table.parquet")
    assert set(table["id"]) == {"NaCl", "Na2O"}
    assert table.set_index("id").loc["NaCl", "too_short"]  # 0.2 ps of MD: no D
    assert not table["use_in_fits"].any()
    assert "n valid = 0" in (out / "summary.md").read_text()
    figures = json.loads((out / "figures.json").read_text())
    assert figures["status"] == "ok" and "fig2_d_vs_msd.png" in figures["figures"]
    sd = json.loads((campaign / "results/materials/NaCl/structure_descriptors/"
                     "structure_descriptors.json").read_text())
    assert sd["descriptors"]["mobile_cn"] == pytest.approx(6.0)

    def edited(**keys):
        return {**config, "campaign": {**config["campaign"], **keys}}

    # a plotting key reruns the figures only
    assert _planned(campaign, edited(colormap="plasma")) == {
        "campaign_figures": {"*"}, "all": {"*"}}
    # a statistics key reruns the statistics and what reads them
    assert _planned(campaign, edited(n_bootstrap=300)) == {
        "campaign_statistics": {"*"}, "campaign_figures": {"*"}, "campaign_summary": {"*"},
        "all": {"*"}}
    # a k range reruns the clustering and what reads it
    assert _planned(campaign, edited(k_range=[2, 3])) == {
        "campaign_clustering": {"*"}, "campaign_figures": {"*"}, "campaign_summary": {"*"},
        "all": {"*"}}
    # letting flagged runs in rebuilds the table and everything after it, no material job
    planned = _planned(campaign, edited(include_flagged=True))
    assert set(planned) == CAMPAIGN_RULES | {"all"}
