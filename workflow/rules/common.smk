# Config validation, the materials table and the small input/param functions
# shared by all stages. Nothing here reads a structure file; parsing must stay fast
# for thousands of materials (and every SLURM job re-parses the Snakefile).

import copy
import json
import sys
from pathlib import Path

from snakemake.exceptions import IncompleteCheckpointException
from snakemake.utils import validate
from snakemake_interface_executor_plugins.settings import DeploymentMethod

from phonion.dynamics import ANALYSES as DYNAMICS_ANALYSES
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
        {s: {**config[s], **_over.get(s, {})} for s in ("relax", "phonons", "md")},
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


def fit_ifc_outputs():
    out = {
        "result": material_path("fit_ifc", "fit_ifc.json"),
        "fc2": material_path("fit_ifc", "fc2.hdf5"),
    }
    if config["phonons"]["fc3"]:
        out["fc3"] = material_path("fit_ifc", "fc3.hdf5")
    return out


def _status_ok(path):
    with open(path) as fh:
        return json.load(fh)["status"] == "ok"


def material_results(wildcards):
    """Stage result files of one material, in pipeline order, as far as its chain goes.

    relax, stability, phonon_descriptors and diffusion are checkpoints: a material that
    fails relaxation gets no phonon jobs, an unstable one no descriptor or MD jobs. Only
    the per-material rule ``material`` calls this, so every material's checkpoints are
    resolved independently and the chains run in parallel.
    """
    mid = wildcards.mid
    base = f"{MATERIALS_DIR}/{mid}"
    files = [f"{base}/intake/intake.json"]
    files.append(checkpoints.relax.get(mid=mid).output.result)
    if not _status_ok(files[-1]):
        return files
    files += [
        f"{base}/displace/displace.json",
        f"{base}/forces/forces.json",
        f"{base}/fit_ifc/fit_ifc.json",
    ]
    files.append(checkpoints.stability.get(mid=mid).output[0])
    if not _status_ok(files[-1]):
        return files
    files.append(checkpoints.phonon_descriptors.get(mid=mid).output.result)
    if not config["md"]["enabled"]:
        return files
    temps = config["md"]["temperatures_K"]
    files += [f"{base}/md/{T}K/md.json" for T in temps]
    files += [checkpoints.diffusion.get(mid=mid, T=T).output.result for T in temps]
    files.append(f"{base}/arrhenius/arrhenius.json")
    if any(config["dynamics"][a] for a in DYNAMICS_ANALYSES):
        files += [f"{base}/md/{T}K/dynamics.json" for T in temps]
    return files


def material_figures(wildcards):
    """Figures of the stages of one material that succeeded."""
    out = []
    for f in material_results(wildcards):
        if f.endswith("phonons.json") and _status_ok(f):
            names = ("msd_modes", "coupling_pdos")
        elif f.endswith("diffusion.json") and _status_ok(f):
            names = ("msd", "vdos")
        elif f.endswith("dynamics.json"):
            names = ("dynamics",)
        else:
            continue
        folder = f.rsplit("/", 1)[0]
        out += [f"{folder}/{n}.{e}" for n in names for e in ("png", "svg")]
    return out


def all_targets():
    return [f"{CAMPAIGN_DIR}/status.tsv"]
