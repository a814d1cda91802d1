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



def test_finetune_runs_in_the_mace_environment(tmp_path, mace_model):
    """A MACE campaign's finetune job: MACE's own trainer (mace_run_train
    --foundation_model) from the small MACE model, on "DFT" forces 1.3x those it was
    trained on (rattled rock salt), in .venv-mace; the held-out force error falls and the
    written model loads through phonion's MACE loader."""
    import json

    import numpy as np
    from ase.build import bulk

    from phonion import formats
    from phonion.potentials import RigidIonPotential
    from phonion.settings import FinetuneSettings

    sc = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    rng = np.random.default_rng(2)
    u = rng.normal(0, 0.05, (12, len(sc), 3))
    forces, energies = np.zeros_like(u), np.zeros(12)
    for k in range(12):
        at = sc.copy()
        at.positions += u[k]
        at.calc = RigidIonPotential()
        forces[k], energies[k] = 1.3 * at.get_forces(), 1.3 * at.get_potential_energy()
    d = tmp_path / "results/materials/NaCl/dft_forces"
    d.mkdir(parents=True)
    formats.write_result(d / "dft_forces.json", formats.new_result("NaCl", "dft_forces", "ok"))
    formats.write_forceset(d / "forces.h5", formats.ForceSet(sc, u, forces,
                                                             np.zeros((len(sc), 3)), energies))
    s = FinetuneSettings(backend="mace", model=str(mace_model), dtype="float64", epochs=15,
                         batch_size=3, learning_rate=0.01, validation_fraction=0.25)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = tmp_path / "finetune.json"
    proc = subprocess.run(
        [str(MACE_PYTHON), "-m", "phonion", "finetune", "--dft-forces", str(d / "dft_forces.json"),
         "--dft-forceset", str(d / "forces.h5"), "--settings", s.to_json(),
         "--model-out", str(tmp_path / "model.model"), "--arrays", str(tmp_path / "ft.h5"),
         "--figures", str(tmp_path / "figures"), "--out", str(out)],
        env=env, capture_output=True, text=True)
    res = json.loads(out.read_text())
    assert proc.returncode == 0 and res["status"] == "ok", (res.get("reason"), proc.stderr[-2000:])
    assert res["n_held_out"] == 3 and len(res["history"]) == 15
    before = res["held_out_base"]["rmse_meV_A"]
    after = res["held_out_finetuned"]["rmse_meV_A"]
    print(f"MACE held-out force RMSE {before:.1f} -> {after:.1f} meV/A")
    assert after < 0.7 * before  # issue 26: at least 30 % below the base model
    assert res["model_sha256"] and (tmp_path / "model.model").is_file()
    assert not (tmp_path / "model.model.mace_work").exists()
