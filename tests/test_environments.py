"""A stage runs through a second Python environment in the same campaign.

mace-torch pins e3nn 0.4.4 while fairchem-core needs e3nn >= 0.5, so backends
live in their own environments. Here intake runs in the workflow's environment
and relax runs MACE in ``.venv-mace`` (made by ``.ci/run``), with a small MACE
model trained on the spot in that environment.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DEMO, ROOT, read_status, snakemake

pytestmark = pytest.mark.slow

MACE_PYTHON = Path(os.environ.get("PHONION_MACE_PYTHON", ROOT / ".venv-mace" / "bin" / "python"))


@pytest.fixture(scope="module")
def mace_model(tmp_path_factory) -> Path:
    if not MACE_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{MACE_PYTHON} missing: .ci/run must create the MACE environment")
        pytest.skip("no MACE environment (.venv-mace); run .ci/run to create it")
    work = tmp_path_factory.mktemp("mace")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([str(MACE_PYTHON), str(ROOT / "tests/mace_model/make_training_set.py"),
                    "train.xyz"], cwd=work, env=env, check=True)
    train = MACE_PYTHON.parent / "mace_run_train"
    subprocess.run([str(train), "--name", "tiny", "--train_file", "train.xyz",
                    "--valid_fraction", "0.1", "--E0s", "average", "--model", "MACE",
                    "--hidden_irreps", "8x0e", "--num_interactions", "1", "--r_max", "4.5",
                    "--max_num_epochs", "30", "--batch_size", "6", "--device", "cpu",
                    "--default_dtype", "float64", "--energy_key", "REF_energy",
                    "--forces_key", "REF_forces", "--stress_key", "REF_stress",
                    "--loss", "stress", "--seed", "1"],
                   cwd=work, env=env, check=True, capture_output=True)
    return work / "tiny.model"


def test_relax_runs_in_the_mace_environment(tmp_path, mace_model):
    assert importlib.util.find_spec("mace") is None, "mace must not be in the workflow env"
    folder = tmp_path / "structures"
    folder.mkdir()
    for name in ("NaCl", "Na2O"):
        (folder / f"{name}.cif").write_text((DEMO / f"{name}.cif").read_text())
    snakemake(tmp_path, "--cores", "2", config={
        "structures": {"folder": "structures"},
        "calculator": {"backend": "mace", "model": str(mace_model), "dtype": "float64"},
        "environments": {"mace": str(MACE_PYTHON)},
        "relax": {"fmax_eV_A": 0.01},
        "phonons": {"min_atoms": 32, "temperatures_K": [800]},
        "md": {"equilibration_steps": 8, "production_steps": 48},
    })
    status = read_status(tmp_path)
    relax = json.loads((tmp_path / "results/materials/NaCl/relax/relax.json").read_text())
    intake = json.loads((tmp_path / "results/materials/NaCl/intake/intake.json").read_text())
    assert relax["status"] == "ok", relax["reason"]
    # the chain went on: forces were evaluated in the MACE environment as well, and the
    # material ends with a verdict (a tiny model may well be unstable), not an error
    forces = json.loads((tmp_path / "results/materials/NaCl/forces/forces.json").read_text())
    assert forces["status"] == "ok"
    assert Path(forces["provenance"]["environment_prefix"]) == MACE_PYTHON.parents[1]
    assert status["NaCl"]["status"] in ("ok", "failed"), status["NaCl"]
    # relax ran with MACE inside .venv-mace, intake in this environment
    assert Path(relax["provenance"]["environment_prefix"]) == MACE_PYTHON.parents[1]
    assert relax["provenance"]["packages"]["e3nn"] == "0.4.4"
    assert relax["provenance"]["model"]["backend"] == "mace"
    assert len(relax["provenance"]["model"]["sha256"]) == 64
    assert intake["provenance"]["environment_prefix"] == sys.prefix
    # the model knows only Na and Cl: Na2O is triaged with the reason, not crashed
    assert status["Na2O"]["status"] == "rejected"
    assert "elements O not supported by mace" in status["Na2O"]["reason"]
