"""Per-stage settings, what reaches a rule's params, and what each rule's environment needs."""

from __future__ import annotations

import ast
import dataclasses
import functools
import json
import re
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from phonion.arrhenius import arrhenius_stage, ion_charge, nernst_einstein_S_cm
from phonion.dft import protocol_of
from phonion.errors import ConfigError
from phonion.settings import SETTINGS, MDSettings, stage_settings

from conftest import ROOT

SCHEMA = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")
SRC = ROOT / "src" / "phonion"


def _config(**sections) -> dict:
    cfg = {"structures": {"folder": "x"}, **sections}
    validate(cfg, SCHEMA)
    return cfg


@pytest.mark.parametrize("stage", sorted(SETTINGS))
def test_settings_defaults_equal_the_schema_defaults(stage):
    """Stage functions called from Python without a config behave like the workflow."""
    assert stage_settings(stage, _config()) == SETTINGS[stage]().canonical()


def test_each_stage_reads_only_its_own_keys():
    base = _config()
    edits = {  # config edit → the stages whose settings it changes
        ("phonons", "temperatures_K"): {"phonon_descriptors", "dft_validation", "fd_check",
                                        "stability_recheck"},
        ("phonons", "amplitude_A"): {"displace"},
        ("phonons", "stability_tolerance_THz"): {"stability", "stability_recheck",
                                                  "dft_validation", "fd_check"},
        ("phonons", "min_design_conditioning"): {"displace", "fit_ifc"},
        ("stability_recheck", "model"): {"stability_recheck", "md_committee"},
        ("phonons", "alpha_min_log10"): {"fit_ifc"},
        ("diffusion", "window"): {"diffusion", "aimd_validation"},
        ("md", "temperatures_K"): set(),  # the MD temperature is the job's wildcard
        ("md", "production_steps"): {"md"},
        # stability_recheck: the second model relaxes the cell on its own
        ("relax", "fmax_eV_A"): {"relax", "stability_recheck"},
        ("relax", "symprec"): {"relax", "dft_relax", "structure_descriptors",
                               "stability_recheck"},
        ("relax", "engine"): {"dft_relax"},  # the MLP relax never reads it: no rerun
        # stability: the model takes the second look at an unstable verdict
        ("calculator", "model"): {"relax", "forces", "md", "elastic", "stability",
                                  "fd_check", "finetune"},
        ("calculator", "device"): set(),  # an execution detail
        ("md", "batch_materials"): set(),  # so is the pool size (a run is its batch's own)
        ("dynamics", "r_max_A"): {"dynamics"},
    }
    values = {("phonons", "temperatures_K"): [300], ("diffusion", "window"): [0.2, 0.9],
              ("md", "temperatures_K"): [700, 900], ("calculator", "model"): "other",
              ("stability_recheck", "model"): "other",
              ("calculator", "device"): "cuda", ("relax", "engine"): "cp2k",
              ("md", "batch_materials"): 4}
    for (section, key), expected in edits.items():
        cfg = json.loads(json.dumps(base))
        cfg[section][key] = values.get((section, key), 0.5)
        changed = {s for s in SETTINGS
                   if stage_settings(s, cfg).to_json() != stage_settings(s, base).to_json()}
        assert changed == expected, (section, key)


def test_dft_forces_read_only_the_protocol_of_their_engine():
    """The CP2K protocol reruns the DFT forces; its run command, the VASP section (with
    CP2K as the engine) and the list of validated materials do not."""
    base = stage_settings("dft_forces", _config()).to_json()

    def with_dft(**dft):
        return stage_settings("dft_forces", _config(dft=dft)).to_json()

    assert with_dft(cp2k={"cutoff_Ry": 300}) != base
    assert with_dft(cp2k={"command": "srun cp2k.psmp"}) == base
    assert with_dft(vasp={"encut_eV": 600}) == base
    assert with_dft(validate=["NaCl"]) == base
    assert with_dft(engine="vasp") != base
    with pytest.raises(ConfigError, match="dft.cp2k has no setting cutoff"):
        protocol_of(stage_settings("dft_forces", _config(dft={"cp2k": {"cutoff": 300}})))


def test_overrides_apply_to_one_material_and_canonical_form_drops_unused_values():
    cfg = _config(overrides={"A": {"phonons": {"min_atoms": 120}, "md": {"seed": 3}}})
    assert stage_settings("displace", cfg, "A").min_atoms == 120
    assert stage_settings("displace", cfg, "B").min_atoms == 80
    assert stage_settings("md", cfg, "A").seed == 3
    # a Langevin friction does not change a Bussi run: editing it reruns nothing
    bussi = _config(md={"thermostat": "bussi"})
    tweaked = _config(md={"thermostat": "bussi", "friction_per_fs": 0.05})
    assert stage_settings("md", bussi).to_json() == stage_settings("md", tweaked).to_json()
    # adaptive keys only count when adaptive MD is on
    assert (stage_settings("md", _config(md={"adaptive": {"chunk_steps": 5}})).to_json()
            == stage_settings("md", _config()).to_json())
    s = MDSettings.from_json(stage_settings("md", cfg).to_json(), temperature_K=900.0)
    assert s.temperature_K == 900.0 and "temperature_K" not in json.loads(s.to_json())


def test_ion_charge_enters_nernst_einstein():
    """σ = n (z e)² D / kB T: a 2+ ion carries four times the current of a 1+ ion at the
    same density and D."""
    assert ion_charge("Na") == 1 and ion_charge("Mg") == 2 and ion_charge("Cu", 1) == 1
    assert nernst_einstein_S_cm(0.1, 0.01, 300.0, charge=2) == pytest.approx(
        4 * nernst_einstein_S_cm(0.1, 0.01, 300.0))
    rows = [{"status": "ok", "diffusive": True, "temperature_K": T, "d_avg_A2_ps": d,
             "d_avg_stderr_A2_ps": 0.1 * d,
             "mobile_ion_density_per_A3": 0.02} for T, d in ((600, 0.01), (800, 0.05))]
    na = arrhenius_stage(rows, SETTINGS["arrhenius"](mobile_ion="Na"))
    mg = arrhenius_stage(rows, SETTINGS["arrhenius"](mobile_ion="Mg"))
    assert mg["mobile_ion_charge"] == 2 and na["mobile_ion_charge"] == 1
    assert mg["sigma_300K_S_cm"] == pytest.approx(4 * na["sigma_300K_S_cm"], rel=1e-12)
    assert mg["ea_eV"] == pytest.approx(na["ea_eV"])


# --- what each rule imports vs. its environment ---------------------------------------

#: import name → distribution name, where they differ (or the package is not installed here)
DISTRIBUTION = {"yaml": "pyyaml", "sklearn": "scikit-learn", "mace": "mace-torch",
                "fairchem": "fairchem-core", "snakemake": "snakemake", "pheasy": "pheasy",
                "phono3py": "phono3py"}
BACKEND_PACKAGES = {"sevenn": "sevenn", "chgnet": "chgnet", "mace": "mace-torch",
                    "fairchem": "fairchem-core", "rigid_ion": None}
#: what every MLP package brings: the SevenNet adapter's model cache imports torch itself,
#: after sevenn (which needs torch) imported; without sevenn it stops before that import
WITH_EVERY_BACKEND = {"torch",
                      "torch-geometric"}  # sevenn's own requirement: its trainer's loader
#: programs a command runs in a subprocess of its own interpreter (not visible as imports)
SUBPROCESS = {"fit_ifc": {"pheasy"}}


def _imports(tree: ast.AST, package: str = "phonion") -> set[str]:
    """Modules imported anywhere in ``tree`` (a module of ``package``): relative imports
    resolved to 'phonion.x.y' (or the imported submodule when it is one), others as their
    top-level name."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1]
                                + ([node.module] if node.module else []))
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    names.add(sub if _source(sub) else base)
            else:
                names.add(node.module.split(".")[0])
    return names


def _source(name: str) -> Path | None:
    """The file of module ``phonion.x.y`` (a module or a package's __init__)."""
    rel = Path(*name.split(".")[1:])
    for path in (SRC / rel.with_suffix(".py"), SRC / rel / "__init__.py"):
        if str(rel) not in ("", ".") and path.is_file():
            return path
    return SRC / "__init__.py" if name == "phonion" else None


def _module_imports(name: str) -> set[str]:
    path = _source(name)
    if path is None:
        return set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    if name.startswith("phonion.cli"):  # the command layer: only what its import runs
        tree = ast.Module([n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))],
                          [])
    return _imports(tree, package)


@functools.cache  # pure AST walks: one per command for the whole module
def command_imports(command: str) -> frozenset[str]:
    """Third-party top-level modules a ``python -m phonion <command>`` run may import:
    the command function's imports and, transitively, every import of the phonion modules
    it reaches (module-level and lazy ones alike: an over-estimate, never an under-one)."""
    for path in sorted((SRC / "cli").glob("*.py")):
        tree = ast.parse(path.read_text())
        funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        if command in funcs:
            break
    else:
        raise AssertionError(f"no command {command} in phonion.cli")
    top = {n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))}
    todo = set().union(*(_imports(n, "phonion.cli") for n in top)) | {"phonion.runner",
                                                                       "phonion.cli"}
    called, stack = set(), [command]
    while stack:  # the command function and the helpers of its module it calls
        name = stack.pop()
        called.add(name)
        todo |= _imports(funcs[name], "phonion.cli")
        stack += [n.func.id for n in ast.walk(funcs[name]) if isinstance(n, ast.Call)
                  and isinstance(n.func, ast.Name) and n.func.id in funcs
                  and n.func.id not in called]
    seen: set[str] = set()
    third = set(SUBPROCESS.get(command, ()))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name.startswith("phonion."):
            todo |= _module_imports(name)
        elif name != "phonion":
            third.add(name)
    return frozenset(m for m in third if not _stdlib(m))


def _stdlib(module: str) -> bool:
    import sys

    return module in sys.stdlib_module_names or module == "__future__"


@functools.cache  # scans every installed distribution: once
def _packages_distributions() -> dict:
    return metadata.packages_distributions()


def _distribution(module: str) -> str:
    if module in DISTRIBUTION:
        return DISTRIBUTION[module]
    found = [d.lower() for d in _packages_distributions().get(module, [])]
    assert found, f"no distribution known for import {module}"
    return module.lower() if module.lower() in found else found[0]


def _requirement_names(lines) -> set[str]:
    return {re.split(r"[<>=~!\[ ;]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")
            for line in lines if isinstance(line, str) and line.strip()}


def _env_packages(path: Path) -> set[str]:
    deps = yaml.safe_load(path.read_text())["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    return _requirement_names(pip) | _requirement_names(d for d in deps if isinstance(d, str))


def _rules() -> dict[str, tuple[str, str]]:
    """rule → (command it runs, conda env variable) from workflow/rules/*.smk."""
    out = {}
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=[ ]*rule[ :])", smk.read_text()):  # under an if too
            # a rule made in a loop names itself (md_pool_<n>): its stem
            rule = (re.match(r"[ ]*rule (\w+):", block)
                    or re.match(r'[ ]*rule:\s+name:\s+f"(\w+?)_?\{', block))
            command = re.search(r"-m phonion (\w+)", block)
            env = re.search(r"conda:\n\s+(?:lambda \w+: )?(\w+)", block)
            if rule and command:
                assert env, f"rule {rule[1]} runs phonion but declares no conda env"
                out[rule[1]] = (command[1], env[1])
    return out


def test_every_rule_env_holds_what_its_command_imports():
    rules = _rules()
    assert {"relax", "forces", "md", "fit_ifc", "diffusion"} <= set(rules)
    backends = [b for b in BACKEND_PACKAGES if (ROOT / "envs" / f"{b}.yaml").exists()]
    for rule, (command, env) in rules.items():
        needed = {_distribution(m) for m in command_imports(command)}
        if env == "WORKFLOW_ENV":
            envs = {"phonion": _env_packages(ROOT / "envs" / "phonion.yaml")}
        else:
            # an MLP environment
            assert env in ("BACKEND_ENV", "RECHECK_ENV", "BENCHMARK_ENVS"), rule
            envs = {b: _env_packages(ROOT / "envs" / f"{b}.yaml") for b in backends}
        for name, have in envs.items():
            own = BACKEND_PACKAGES.get(name)
            others = {p for b, p in BACKEND_PACKAGES.items() if p and b != name}
            if env != "WORKFLOW_ENV":
                others |= WITH_EVERY_BACKEND
            missing = needed - have - others - {"phonion"}
            assert not missing, f"rule {rule} ({command}) in envs/{name}.yaml lacks {missing}"
            if own:
                assert own in have, f"envs/{name}.yaml lacks its backend {own}"


def test_pyproject_extras_hold_what_the_commands_import():
    project = __import__("tomllib").loads((ROOT / "pyproject.toml").read_text())["project"]
    core = _requirement_names(project["dependencies"])
    extras = {k: _requirement_names(v) for k, v in project["optional-dependencies"].items()}
    for command, env in _rules().values():
        needed = {_distribution(m) for m in command_imports(command)} - {"phonion"}
        if env == "WORKFLOW_ENV":
            missing = needed - core - extras["workflow"]
            assert not missing, f"{command}: pip install '.[workflow]' lacks {missing}"
        else:  # a backend environment: core + that backend's extra
            others = (set(BACKEND_PACKAGES.values()) - {None}) | WITH_EVERY_BACKEND
            if command in ("md_batch", "md_pool"):  # md.engine torch_sim: phonion[batch]
                others |= extras["batch"]
            missing = needed - core - others
            assert not missing, f"{command}: the core dependencies lack {missing}"


def test_backend_commands_import_nothing_heavy():
    """relax, forces, md, stability and fd_check run in MLP environments that need not have
    pymatgen, pandas or scikit-learn; only forces (adaptive snapshots) fits with phonopy and
    symfc, and the stability screen and fd_check use phonopy, seekpath and matplotlib."""
    screen = {"phonopy", "symfc", "seekpath", "matplotlib"}
    for command in ("relax", "forces", "md", "stability", "fd_check"):
        allowed = ({"phonopy", "symfc"} if command == "forces"
                   else screen if command in ("stability", "fd_check") else set())
        heavy = command_imports(command) & ({"phonopy", "pymatgen", "matplotlib", "symfc",
                                             "seekpath", "pandas", "sklearn"} - allowed)
        assert not heavy, (command, heavy)


def test_settings_are_frozen_dataclasses():
    for cls in SETTINGS.values():
        assert dataclasses.is_dataclass(cls)
        with pytest.raises(dataclasses.FrozenInstanceError):
            cls().__setattr__(dataclasses.fields(cls)[0].name, None)
