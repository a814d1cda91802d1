# Config validation, the materials table and the small input/param functions
# shared by all stages. Nothing here reads a structure file; parsing must stay fast
# for thousands of materials (and every SLURM job re-parses the Snakefile).

import copy
import json
import sys
from pathlib import Path

from snakemake.utils import validate
from snakemake_interface_executor_plugins.settings import DeploymentMethod

from phonion.intake import discover

validate(config, schema="../schemas/config.schema.yaml")

RESULTS = config["results"]
MATERIALS_DIR = f"{RESULTS}/materials"
CAMPAIGN_DIR = f"{RESULTS}/campaign"
DISCOVERY = discover(config["structures"]["folder"], config["structures"]["table"])
MATERIALS = DISCOVERY.materials
if not MATERIALS and not DISCOVERY.rejected:
    raise ValueError(
        "no structures found: set structures.folder or structures.table in config"
    )


for _mid, _over in config["overrides"].items():
    validate(
        {"relax": {**config["relax"], **_over.get("relax", {})}},
        schema="../schemas/config.schema.yaml",
    )


def settings(mid, section):
    """Config section for one material, with its overrides applied."""
    merged = copy.deepcopy(config[section])
    merged.update(config["overrides"].get(mid, {}).get(section, {}))
    return merged


def settings_json(section):
    """Params function: the material's settings of ``section`` as a JSON string."""
    return lambda wc: json.dumps(settings(wc.mid, section), sort_keys=True)


def structure_file(wc):
    return str(MATERIALS[wc.mid])


def backend_python(backend=None):
    """Interpreter of a backend's environment (config ``environments``)."""
    backend = backend or config["calculator"]["backend"]
    env = config["environments"].get(backend, "")
    if not env:
        return (
            "python"
            if DeploymentMethod.CONDA in deployment_methods()
            else sys.executable
        )
    path = Path(env).expanduser()
    return str(path / "bin" / "python") if path.is_dir() else str(path)


def deployment_methods():
    return workflow.deployment_settings.deployment_method


def backend_conda_env():
    """Conda environment file of the backend (used only with --sdm conda)."""
    env = (
        config["calculator"]["conda_env"]
        or f"envs/{config['calculator']['backend']}.yaml"
    )
    return str(Path(workflow.basedir) / env)


def pythonpath():
    """Shell prefix putting this workflow's src/ first: backend environments need
    not have phonion installed, and every environment runs the same phonion code."""
    return f"PYTHONPATH={Path(workflow.basedir) / 'src'}${{PYTHONPATH:+:$PYTHONPATH}}"


def calculator_json():
    return json.dumps(config["calculator"], sort_keys=True)


def material_path(stage, name):
    return f"{MATERIALS_DIR}/{{mid}}/{stage}/{name}"


def all_targets():
    return [f"{CAMPAIGN_DIR}/status.tsv"]
