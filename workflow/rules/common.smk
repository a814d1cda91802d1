# Config validation, the materials table, the stage table and the small functions that
# all stages share. Nothing here reads a structure or result file at parse time (a campaign
# of thousands of materials must parse in seconds; every SLURM job re-parses the Snakefile).

import collections
import dataclasses
import functools
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from snakemake.utils import validate
from snakemake_interface_executor_plugins.settings import DeploymentMethod

from phonion.campaign.selection import top_materials
from phonion.intake import discover
from phonion.settings_dft import FINETUNED_SUFFIX, rescreened
from phonion.settings import check_campaign, stage_settings

validate(config, schema="../schemas/config.schema.yaml")

RESULTS = config["results"]
MATERIALS_DIR = f"{RESULTS}/materials"
CAMPAIGN_DIR = f"{RESULTS}/campaign"
DISCOVERY = discover(config["structures"]["folder"], config["structures"]["table"])
MATERIALS = DISCOVERY.materials
if not MATERIALS and not DISCOVERY.rejected:
    raise ValueError(DISCOVERY.nothing_found())
check_campaign(config, [*MATERIALS, *DISCOVERY.rejected])

for _mid, _over in config["overrides"].items():
    validate(
        {s: {**config[s], **_over.get(s, {})} for s in ("relax", "phonons", "md")},
        schema="../schemas/config.schema.yaml",
    )

MD_TEMPERATURES = config["md"]["temperatures_K"] if config["md"]["enabled"] else []
DYNAMICS = any(
    config["dynamics"][a]
    for a in ("rdf", "van_hove", "reorientation", "tetrahedra", "density")
)


# --- the stage table ---------------------------------------------------------------------
# Every stage writes results/materials/{mid}/{stage}[/{T}K]/{stage}.json whatever happens
# (ok, failed, rejected, error or skipped), plus the files named here and, with a report
# category, a figures/ folder. So the DAG is static (no checkpoints) and the status table,
# the figures and the check for missing or damaged files all derive from this table.
Stage = collections.namedtuple("Stage", "per_temperature files category")
STAGES = {
    "intake": Stage(False, {}, None),
    "relax": Stage(False, {"poscar": "POSCAR"}, None),
    "structure_descriptors": Stage(False, {}, None),
    "elastic": Stage(False, {}, None),
    "displace": Stage(False, {}, None),
    "forces": Stage(False, {"forceset": "forces.h5"}, None),
    "fit_ifc": Stage(
        False,
        {
            "fc2": "fc2.hdf5",
            **({"fc3": "fc3.hdf5"} if config["phonons"]["fc3"] else {}),
        },
        None,
    ),
    # fd_check reads the fit only; listed before stability, a disagreement is what
    # status.tsv says about the material
    "fd_check": Stage(False, {"fc2": "fd_fc2.hdf5"}, None),
    "stability": Stage(False, {}, "Phonons"),
    "stability_recheck": Stage(False, {}, None),
    "phonon_descriptors": Stage(False, {"arrays": "modes.h5"}, "Phonons"),
    "md": Stage(True, {"trajectory": "trajectory.h5"}, None),
    "md_committee": Stage(True, {}, None),
    "diffusion": Stage(True, {"arrays": "diffusion.h5"}, "Diffusion"),
    "dynamics": Stage(
        True,
        {
            "arrays": "dynamics.h5",
            **({"density": "density.CHGCAR"} if config["dynamics"]["density"] else {}),
        },
        "Diffusion",
    ),
    "arrhenius": Stage(False, {}, "Diffusion"),
    "dft_forces": Stage(False, {"forceset": "forces.h5"}, None),
    "dft_validation": Stage(False, {"arrays": "validation.h5"}, "Validation"),
    "aimd": Stage(True, {"trajectory": "trajectory.h5"}, None),
    "aimd_validation": Stage(True, {"arrays": "aimd_validation.h5"}, "Validation"),
}
#: materials whose fit is checked by phonopy finite displacements (phonons.fd_check): the
#: listed ones and a share picked by a hash of the id, the same on every run
_FD = config["phonons"]["fd_check"]
FD_MATERIALS = set(_FD["materials"]) | {
    m
    for m in MATERIALS
    if int(hashlib.sha256(m.encode()).hexdigest()[:8], 16) / 16**8 < _FD["fraction"]
}
#: materials validated against DFT (config dft.validate): only they get the DFT stages.
DFT_MATERIALS = set(config["dft"]["validate"])
DFT_STAGES = {"dft_forces", "dft_validation"}
#: materials and temperatures run with AIMD (config dft.aimd): only they get the AIMD stages.
AIMD_MATERIALS = set(config["dft"]["aimd"]["materials"])
_TOP = config["dft"]["aimd"]["top_k"]
if _TOP.get("descriptor") and _TOP.get("k", 0) > 0:
    # "top k by a descriptor": from the campaign table of an earlier run (none yet: none)
    AIMD_MATERIALS |= set(
        top_materials(
            f"{CAMPAIGN_DIR}/table.csv",
            _TOP["descriptor"],
            _TOP["k"],
            _TOP.get("largest", True),
            tuple(DISCOVERY.rejected),
        )
    ) & set(MATERIALS)
AIMD_TEMPERATURES = config["dft"]["aimd"]["temperatures_K"] if AIMD_MATERIALS else []
AIMD_STAGES = {"aimd", "aimd_validation"}
_no_mlp = sorted(set(AIMD_TEMPERATURES) - set(MD_TEMPERATURES))
if _no_mlp:
    raise ValueError(
        f"dft.aimd.temperatures_K {_no_mlp} have no MLP MD to compare with: add them to "
        "md.temperatures_K (and keep md.enabled)"
    )


#: fine-tuning on the campaign's DFT forces (config finetune, docs/finetune.md): the model it
#: writes, the materials it learns from, and the materials screened again with it -- as
#: materials of their own, "<id>+finetuned", that share the structure file of <id>
FINETUNE = config["finetune"]
FINETUNE_ON = FINETUNE["enabled"]
FINETUNE_MATERIALS = set(FINETUNE["materials"]) or DFT_MATERIALS
if FINETUNE_ON:
    if not DFT_MATERIALS:
        raise ValueError(
            "finetune.enabled needs DFT forces to learn from: list materials in dft.validate"
        )
    _unknown = sorted(FINETUNE_MATERIALS - DFT_MATERIALS)
    if _unknown:
        raise ValueError(
            f"finetune.materials names {', '.join(_unknown)}: not in dft.validate"
        )
    _rescreen = (
        set(MATERIALS) if "all" in FINETUNE["rescreen"] else set(FINETUNE["rescreen"])
    )
    _unknown = sorted(_rescreen - set(MATERIALS) - set(DISCOVERY.rejected))
    if _unknown:
        raise ValueError(
            f"finetune.rescreen names {', '.join(_unknown)}: not a material here"
        )
    for _mid in sorted(_rescreen & set(MATERIALS)):
        MATERIALS[f"{_mid}{FINETUNED_SUFFIX}"] = MATERIALS[_mid]


def active_stages():
    """Stages that run in this campaign, in pipeline order."""
    off = set()
    if not config["md"]["enabled"]:
        off |= {"md", "diffusion", "dynamics", "arrhenius"}
    if not DYNAMICS:
        off.add("dynamics")
    if not config["stability_recheck"]["enabled"]:
        off |= {"stability_recheck", "md_committee"}
    if not config["md"]["enabled"] or not config["stability_recheck"]["md_frames"]:
        off.add("md_committee")
    if not config["elastic"]["enabled"]:
        off.add("elastic")
    if not FD_MATERIALS:
        off.add("fd_check")
    if not DFT_MATERIALS:
        off |= DFT_STAGES
    if not AIMD_MATERIALS:
        off |= AIMD_STAGES
    return [s for s in STAGES if s not in off]


def stage_path(stage, name=None):
    """Path pattern of a file of ``stage`` (default: its result JSON)."""
    folder = f"{MATERIALS_DIR}/{{mid}}/{stage}"
    if STAGES[stage].per_temperature:
        folder = f"{folder}/{{T}}K"
    return f"{folder}/{name}" if name else f"{folder}/{stage}.json"


def stage_outputs(stage):
    """Output directive of a stage's rule: its result, its files and its figure folder (in
    the report; an empty folder when the stage produced no figures)."""
    s = STAGES[stage]
    out = {"result": stage_path(stage)}
    out.update({key: stage_path(stage, name) for key, name in s.files.items()})
    if s.category:
        out["figures"] = report(
            directory(stage_path(stage, "figures")),
            patterns=["{name}.png"],
            caption=f"../report/{stage}.rst",
            category=s.category,
            subcategory="{mid}",
        )
    return out


def stage_log(stage):
    if stage == "md" and MD_BATCH:  # one job, one log for every temperature
        return f"{MATERIALS_DIR}/{{mid}}/md/md_batch.log"
    return stage_path(stage, f"{stage}.log")


def material_stages(mid):
    """(stage, result, other files, figure folder or None, log) of one material, in
    pipeline order."""
    rows = []
    for stage in active_stages():
        if stage in DFT_STAGES and mid not in DFT_MATERIALS:
            continue
        if stage == "fd_check" and mid not in FD_MATERIALS:
            continue
        if stage in AIMD_STAGES and mid not in AIMD_MATERIALS:
            continue
        s = STAGES[stage]
        temperatures = AIMD_TEMPERATURES if stage in AIMD_STAGES else MD_TEMPERATURES
        for T in temperatures if s.per_temperature else [None]:
            fill = dict(mid=mid, T=T)
            rows.append(
                (
                    stage,
                    stage_path(stage).format(**fill),
                    [stage_path(stage, n).format(**fill) for n in s.files.values()],
                    stage_path(stage, "figures").format(**fill) if s.category else None,
                    stage_log(stage).format(**fill),
                )
            )
    return rows


def campaign_results(wildcards=None):
    """Every stage result of every material, in pipeline order per material."""
    return [row[1] for mid in MATERIALS for row in material_stages(mid)]


def all_targets(wildcards=None):
    """The status table, and -- once it exists -- every result whose files went missing or
    were damaged since (damaged ones are removed here), so that exactly those stages and
    what depends on them run again: by itself Snakemake calls a campaign whose status table
    is newer than everything complete, even when intermediate files are gone."""
    status = f"{CAMPAIGN_DIR}/status.tsv"
    targets = [status, *campaign_targets()]  # campaign_analysis.smk
    if workflow.is_main_process and os.path.exists(status):
        from phonion.status import regenerate

        targets += regenerate(
            [row[1:4] for mid in MATERIALS for row in material_stages(mid)],
            status,
            dry_run=workflow.dryrun,
        )
    return targets


@functools.lru_cache(maxsize=None)
def _settings_json(stage, mid):
    if mid is not None and rescreened(mid):
        # the fine-tuned model in place of calculator.model; the material's own overrides
        tuned = {
            **config,
            "calculator": {**config["calculator"], "model": FINETUNED_MODEL, "modal": ""},
        }
        s = stage_settings(stage, tuned, mid.removesuffix(FINETUNED_SUFFIX))
        if stage == "relax":
            # the model learnt DFT forces at the base model's relaxed cell only (no stress,
            # no other volume): it keeps that cell and relaxes the positions
            s = dataclasses.replace(s, cell_filter="none")
        return s.to_json()
    return stage_settings(stage, config, mid).to_json()


def stage_params(stage):
    """Params function: the canonical JSON of the settings ``stage`` reads, for this
    material (its overrides applied). Only these values rerun the stage when changed.
    Materials without overrides share one cached JSON per stage (Snakemake asks for params
    several times per job: at 4 000 materials this is most of the planning time)."""
    overridden = set(config["overrides"])
    return lambda wc: _settings_json(
        stage, wc.mid if wc.mid in overridden or rescreened(wc.mid) else None
    )


def structure_file(wc):
    return str(MATERIALS[wc.mid])


# --- execution details: environment variables, never params -----------------------------
# The interpreter of each environment, this checkout's src/ and the torch device reach the
# jobs as environment variables set here (every job, local or on SLURM, inherits them or
# re-parses this file), referenced in the shell commands as "$VAR": they never enter
# Snakemake's params, so another interpreter path or device reruns nothing, and a quoted
# expansion is never re-parsed by the shell, so no config value can inject a command.
def deployment_methods():
    return workflow.deployment_settings.deployment_method


CONDA = DeploymentMethod.CONDA in deployment_methods()


def _interpreter(env, key):
    """The Python of an environment folder or interpreter path (config ``environments``)."""
    if not env:
        return "python" if CONDA else sys.executable
    path = Path(env).expanduser()
    python = path / "bin" / "python" if path.is_dir() else path
    if not (python.is_file() and os.access(python, os.X_OK)):
        raise ValueError(
            f"environments.{key} = '{env}' is not an interpreter (or an environment folder "
            "with bin/python); fix or remove it in config"
        )
    return str(python)


BACKEND = config["calculator"]["backend"]
_DFT = config["dft"][config["dft"]["engine"]]
if config["relax"]["engine"] != "mlp":
    if config["relax"]["engine"] != config["dft"]["engine"]:
        raise ValueError(
            f"relax.engine {config['relax']['engine']} but dft.engine "
            f"{config['dft']['engine']}: one DFT engine per campaign; set dft.engine too"
        )
    from phonion.dft import protocol_of

    protocol_of(stage_settings("dft_relax", config))  # a typo in dft.<engine> stops here
if DFT_MATERIALS or AIMD_MATERIALS:
    # a typo in dft.<engine> or a material that is not in the campaign stops here
    from phonion.dft import protocol_of

    protocol_of(stage_settings("dft_forces", config))
    for _key, _mids in (("validate", DFT_MATERIALS), ("aimd.materials", AIMD_MATERIALS)):
        _unknown = sorted(_mids - set(MATERIALS) - set(DISCOVERY.rejected))
        if _unknown:
            raise ValueError(f"dft.{_key} names {', '.join(_unknown)}: not a material here")
_unknown = sorted(set(_FD["materials"]) - set(MATERIALS) - set(DISCOVERY.rejected))
if _unknown:
    raise ValueError(
        f"phonons.fd_check.materials names {', '.join(_unknown)}: not a material here"
    )
_BACKEND_PYTHON = _interpreter(config["environments"].get(BACKEND, ""), BACKEND)

#: md.engine torch_sim: every temperature of a material in one batched job (md.smk); what
#: cannot run batched (md.adaptive, no torch-sim in the MD
#: environment) stops here with the reason
MD_BATCH = config["md"]["enabled"] and config["md"]["engine"] == "torch_sim"
MD_BATCH_SIZE = len(MD_TEMPERATURES)
#: md.batch_materials > 1: pool name → its materials (consecutive in campaign order; the
#: base and the fine-tuned model never share a batch); each pool is one md_pool job
MD_POOLS = {}
if MD_BATCH and config["md"]["batch_materials"] > 1:
    _n = config["md"]["batch_materials"]
    for _tuned in (False, True):
        _mids = [m for m in MATERIALS if bool(rescreened(m)) == _tuned]
        for _k in range(0, len(_mids), _n):
            MD_POOLS[f"{'finetuned_' if _tuned else ''}{_k // _n:04d}"] = _mids[_k : _k + _n]
if MD_BATCH:
    from phonion.md_batch import engine_problem, torch_sim_missing

    _why = engine_problem(stage_settings("md", config), check_import=False)
    if not _why and not CONDA:
        _why = torch_sim_missing(_BACKEND_PYTHON)
    if _why:
        raise ValueError(_why)


def _benchmark_key(entry):
    """Folder name of a benchmarked MLP: backend-model[-modal], file-name safe."""
    name = "-".join(
        x for x in (entry["backend"], Path(entry["model"]).name, entry["modal"]) if x
    )
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name)


#: MLPs benchmarked against the DFT forces (config dft.benchmark_models), by folder name;
#: with finetune.enabled also the fine-tuned model, as "finetuned"
FINETUNED_MODEL = f"{CAMPAIGN_DIR}/finetune/model.pth"
BENCHMARK_MODELS = {
    _benchmark_key(e): e
    for e in (
        {"model": "", "modal": "", "dtype": "float64", **entry}
        for entry in config["dft"]["benchmark_models"]
    )
}
if FINETUNE_ON:
    BENCHMARK_MODELS["finetuned"] = {
        "backend": BACKEND,
        "model": FINETUNED_MODEL,
        "modal": "",
        "dtype": config["calculator"]["dtype"],
        "label": f"{BACKEND}:{config['calculator']['model']}+finetuned",
    }
RECHECK = config["stability_recheck"]
_RECHECK_PYTHON = _interpreter(
    config["environments"].get(RECHECK["backend"], ""), RECHECK["backend"]
)
_SRC = str(Path(workflow.basedir) / "src")
_PATH = [
    p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != _SRC
]
os.environ.update(
    # environments need not have phonion installed: all run this checkout's code
    PYTHONPATH=os.pathsep.join([_SRC, *_PATH]),
    PHONION_PYTHON=_interpreter("", "python"),
    PHONION_BACKEND_PYTHON=_BACKEND_PYTHON,
    PHONION_RECHECK_PYTHON=_RECHECK_PYTHON,
    PHONION_PHEASY_PYTHON=(
        _interpreter(config["environments"]["pheasy"], "pheasy")
        if config["environments"]["pheasy"]
        else ""
    ),
    # the torch device of the MD jobs and the finetune job, the ones the SLURM profile gives
    # GPUs (slurm.md_gpus); every other MLP stage runs on the CPU (the --device default)
    PHONION_MD_DEVICE=config["calculator"]["device"],
    # the interpreter of each benchmarked backend (the mlp_benchmark jobs)
    **{
        f"PHONION_PYTHON_{e['backend']}": _interpreter(
            config["environments"].get(e["backend"], ""), e["backend"]
        )
        for e in BENCHMARK_MODELS.values()
    },
    # DFT run command and wall-time limit of one run: execution details, never params
    PHONION_DFT_COMMAND=_DFT.get("command", ""),
    PHONION_DFT_GAMMA_COMMAND=_DFT.get("gamma_command", ""),
    PHONION_DFT_TIMEOUT_MIN=str(config["dft"]["run_timeout_min"]),
)
if workflow.is_main_process and not CONDA:
    # the configured models must be on this machine: say so now, not in every MLP job
    for _key, _python, _backend, _model in [
        ("calculator", _BACKEND_PYTHON, BACKEND, config["calculator"]["model"]),
    ] + (
        [
            ("stability_recheck", _RECHECK_PYTHON, RECHECK["backend"], _m.partition(":")[0])
            for _m in [RECHECK["model"], *RECHECK["further_models"]]
        ]
        if RECHECK["enabled"]
        else []
    ) + [
        (
            "dft.benchmark_models",
            os.environ[f"PHONION_PYTHON_{_e['backend']}"],
            _e["backend"],
            _e["model"],
        )
        for _k, _e in (BENCHMARK_MODELS.items() if DFT_MATERIALS else [])
        if _k != "finetuned"  # written by the finetune stage of this run
    ]:
        _check = subprocess.run(
            [_python, "-m", "phonion", "model", "--backend", _backend, "--model", _model],
            capture_output=True,
            text=True,
        )
        if _check.returncode:
            _why = (_check.stdout + _check.stderr).strip().splitlines()[-1]
            _field = "dft.benchmark_models" if _key.startswith("dft") else f"{_key}.model"
            raise ValueError(f"{_key}: {_why.replace('calculator.model', _field)}")
if workflow.is_main_process and not workflow.dryrun:
    # one campaign per results tree: a second Snakemake on it (another checkout, another
    # working directory) stops here instead of racing this one
    from phonion.formats import lock_tree

    RESULTS_LOCK = lock_tree(RESULTS)
WORKFLOW_ENV = "../../envs/phonion.yaml"
BACKEND_ENV = str(
    Path(workflow.basedir)
    / (config["calculator"]["conda_env"] or f"envs/{BACKEND}.yaml")
)
RECHECK_ENV = str(Path(workflow.basedir) / f"envs/{RECHECK['backend']}.yaml")

#: conda env of each benchmarked MLP (the mlp_benchmark jobs), its backend env file.
BENCHMARK_ENVS = {
    k: str(Path(workflow.basedir) / f"envs/{e['backend']}.yaml")
    for k, e in BENCHMARK_MODELS.items()
}


def _stable(stability_result):
    """Whether a stability result says ok; True while it does not exist yet (Snakemake
    evaluates resources again, with every input present, before it submits a job); None:
    no material to run."""
    if stability_result is None:
        return False
    try:
        with open(stability_result) as fh:
            return json.load(fh).get("status") == "ok"
    except (OSError, ValueError):
        return True


def md_resource(input, key, attempt=1, members=1):
    """SLURM shape of an MD job: GPUs, cores, memory and wall time from config ``slurm`` on
    the GPU partition (``PHONION_GPU_PARTITION``) for a dynamically stable material; a few
    minutes on one core of the default partition for any other, whose md job only writes
    ``skipped``: an unstable material costs no GPU time. A batched job (``members`` runs,
    md.engine torch_sim) gets the memory of that many runs and the wall time of one: its
    runs advance together. A retry (the profiles' ``retries``)
    gets ``attempt`` times the wall time and memory: a job that SLURM killed at its time or
    memory limit resumes from its checkpoint with more."""
    env = os.environ
    default = env.get("SBATCH_PARTITION", "")
    if not _stable(input.stability):
        shape = {
            "gpu": 0,
            "cpus_per_task": 1,
            "mem_mb": 1000,
            "runtime": 5,
            "slurm_partition": default,
        }
    else:
        shape = {
            "gpu": config["slurm"]["md_gpus"],
            "cpus_per_task": config["slurm"]["md_cpus"],
            # a batch holds every member's graph at once (md.engine torch_sim)
            "mem_mb": config["slurm"]["md_mem_mb"] * attempt * members,
            "runtime": config["slurm"]["md_runtime_min"] * attempt,
            "slurm_partition": env.get("PHONION_GPU_PARTITION", default),
        }
    return shape[key]


def md_settings_file(wildcards=None):
    """A material's md settings as a file (md.batch_materials > 1; rule md_settings)."""
    return f"{MATERIALS_DIR}/{{mid}}/md/settings.json"


def write_md_settings(path, log, settings):
    """Rule md_settings: the settings JSON to ``path``, its digest to ``log``."""
    Path(path).write_text(settings)
    digest = hashlib.sha256(settings.encode()).hexdigest()[:12]
    Path(log).write_text(f"md settings {digest} for md_pool and md_batch\n")


def md_pool_record(wildcards=None):
    """The pool record a material's md_batch job reads (md.batch_materials > 1)."""
    return f"{MATERIALS_DIR}/{{mid}}/md/pool.json"


def md_pool_resource(input, key, attempt=1):
    """SLURM shape of a pool job: the GPU shape for the runs it will run (its stable
    materials' runs not yet finished with their settings, phonion.md_pool.pending), with
    their memory and the wall time of one run per thermostat (each its own batch); a few
    minutes on one core when it only passes finished runs on, or no member is stable."""
    from phonion.md_pool import pending

    runs, thermostats, stable = 0, set(), None
    for displace, stability, settings in zip(input.displace, input.stability, input.settings):
        if _stable(stability):
            mid = Path(stability).parent.parent.name
            left, thermostat = pending(
                displace,
                settings,
                expand(stage_path("md", "trajectory.h5"), mid=mid, T=MD_TEMPERATURES),
            )
            runs += left
            if left:
                stable, thermostats = stability, thermostats | {thermostat}
    one = SimpleNamespace(stability=stable)  # None: the one-core shape
    if key == "runtime":
        return md_resource(one, key, attempt) * max(len(thermostats - {""}), 1)
    return md_resource(one, key, attempt, max(runs, 1))


def md_batch_resource(wildcards, input, key, attempt=1):
    """md_batch's shape: one core for minutes when it only adopts what its pool ran
    (phonion.md_pool.adoptable), else the GPU shape of its runs."""
    if MD_POOLS:
        from phonion.md_pool import adoptable

        runs = expand(stage_path("md", "trajectory.h5"), mid=wildcards.mid, T=MD_TEMPERATURES)
        if attempt == 1 and adoptable(input.pool, runs):
            return {"gpu": 0, "cpus_per_task": 1, "mem_mb": 2000, "runtime": 10,
                    "slurm_partition": os.environ.get("SBATCH_PARTITION", "")}[key]
    return md_resource(input, key, attempt, MD_BATCH_SIZE)


# --- the campaign analysis (workflow/rules/campaign_analysis.smk) -------------------------
def campaign_path(name):
    return f"{CAMPAIGN_DIR}/{name}"


def campaign_settings(step):
    """The canonical JSON of a campaign step's settings (its params)."""
    return stage_settings(f"campaign_{step}", config).to_json()


def campaign_external_d(wildcards=None):
    """The external diffusion table (config ``campaign.external_d``), when one is set."""
    external = config["campaign"]["external_d"]
    return [external] if external else []


def benchmark_results(wildcards=None):
    """The dft_validation result (configured MLP) and every mlp_benchmark result of every
    validated material."""
    mids = sorted(DFT_MATERIALS & set(MATERIALS))
    return [stage_path("dft_validation").format(mid=m) for m in mids] + [
        f"{MATERIALS_DIR}/{m}/mlp_benchmark/{k}/mlp_benchmark.json"
        for m in mids
        for k in BENCHMARK_MODELS
    ]


def campaign_targets(wildcards=None):
    validation = [campaign_path("validation.csv")] if DFT_MATERIALS else []
    if DFT_MATERIALS and BENCHMARK_MODELS:
        validation.append(campaign_path("mlp_benchmark.csv"))
    if FINETUNE_ON:
        validation.append(campaign_path("finetune/finetune.json"))
    return [campaign_path("summary.md"), campaign_path("figures.json"), *validation]


def write_list(path, items, log):
    """One item per line into ``path`` (the campaign table's list of stage results)."""
    Path(path).write_text("".join(f"{i}\n" for i in items))
    Path(log).write_text(f"{len(items)} stage results\n")
