"""Command line: ``python -m phonion <stage> ...``, one command per stage.

Every command reads its stage's settings (``--settings``, the JSON of
:mod:`phonion.settings`), names its upstream results and its outputs, and hands a body
to :func:`phonion.runner.run_stage`, which does the rest (skip, status, provenance,
atomic writes). A body is thin: read the inputs, call the stage module's one function,
write the outputs and a log line; the science lives in the stage modules (one per stage,
under the stage's name). Stage modules are imported inside the bodies, so a command that
only writes ``skipped`` starts in a fraction of a second and a backend environment
(``relax``, ``forces``, ``md``) needs only its MLP package, numpy, scipy, ASE, spglib and
h5py. The rules call these commands through the Python of the stage's environment (see
``environments`` in ``config/README.md``).

One file per stage family: :mod:`.structure` (intake, relaxation, structure and elastic
descriptors), :mod:`.phonons`, :mod:`.md` (MD and its analyses), :mod:`.dft` (DFT forces,
AIMD, validation, MLP benchmark), :mod:`.campaign`, :mod:`.tools` (``model``: is the
configured MLP on this machine? ``fetch``: structures from Materials Project / OQMD, run
once before a campaign).
"""

from __future__ import annotations

import argparse

from ..runner import main_guard
from .campaign import (
    campaign_clustering,
    campaign_figures,
    campaign_model,
    campaign_statistics,
    campaign_summary,
    campaign_table,
)
from .dft import (
    aimd,
    aimd_validation,
    dft_forces,
    dft_validation,
    finetune,
    mlp_benchmark,
    mlp_benchmark_table,
    validation_table,
)
from .md import arrhenius, diffusion, dynamics, md, md_batch, md_committee, md_pool
from .phonons import (
    displace,
    fd_check,
    fit_ifc,
    forces,
    phonon_descriptors,
    stability,
    stability_recheck,
)
from .structure import dft_relax, elastic, intake, relax, structure_descriptors
from .tools import fetch, model

#: command → (function, help, required options, optional options with defaults). Commands
#: are the stage names; every command also takes ``--settings`` and ``--out``.
COMMANDS = {
    "intake": (intake, "read and triage one structure", ["--id", "--source"],
               {"--finetune": "", "--base-relax": ""}),
    "relax": (relax, "relax one material with the configured MLP", ["--intake", "--poscar"],
              {"--device": "cpu"}),
    "dft_relax": (dft_relax, "relax one material with the DFT engine of relax.engine",
                  ["--intake", "--poscar", "--workdir"],
                  {"--run-command": "", "--gamma-command": "", "--timeout-min": "",
                   "--path": None}),
    "displace": (displace, "supercell and random displacements", ["--relax"], {}),
    "forces": (forces, "MLP forces on all displaced supercells", ["--displace", "--forceset"],
               {"--device": "cpu"}),
    "fit_ifc": (fit_ifc, "force constants with pheasy",
                ["--displace", "--forces", "--forceset", "--fc2"],
                {"--fc3": "", "--pheasy-python": ""}),
    "stability": (stability, "dynamic stability screen (the MLP checks an unstable verdict)",
                  ["--displace", "--fit-ifc", "--fc2", "--figures"], {"--device": "cpu"}),
    "stability_recheck": (stability_recheck, "stability screen again with a second MLP",
                          ["--displace", "--stability"],
                          {"--device": "cpu", "--forceset": "", "--fc2": "",
                           "--intake": ""}),
    "fd_check": (fd_check, "phonopy finite displacements with the same model, against the fit",
                 ["--displace", "--fit-ifc", "--fc2", "--fd-fc2"], {}),
    "phonon_descriptors": (phonon_descriptors, "harmonic phonon descriptors and figures",
                           ["--displace", "--stability", "--fc2", "--arrays", "--figures"], {}),
    "md": (md, "NVT MD with the MLP (resumable)",
           ["--displace", "--stability", "--fc2", "--temperature-K", "--trajectory"],
           {"--device": "cpu"}),
    "md_batch": (md_batch, "NVT MD of every temperature of a material as one batch "
                 "(md.engine torch_sim; resumable)",
                 ["--displace", "--stability", "--fc2", "--temperatures-K", "--trajectory"],
                 {"--device": "cpu", "--pool": ""}),
    "md_pool": (md_pool, "NVT MD of several materials as one batch (md.batch_materials; "
                "their md_batch jobs adopt the runs; not a stage)",
                ["--pool", "--displace", "--stability", "--fc2", "--settings",
                 "--temperatures-K", "--trajectory", "--out"], {"--device": "cpu"}),
    "md_committee": (md_committee, "the second model's forces on frames of one MD run",
                     ["--md", "--trajectory"], {"--device": "cpu", "--recheck": ""}),
    "diffusion": (diffusion, "MSD, D, melt filter and VDOS of one trajectory (workflow: "
                  "--md ... ; standalone: --trajectory FILE --out DIR)", ["--trajectory"],
                  {"--md": "", "--stability": "", "--arrays": "", "--figures": "",
                   "--displace": "", "--fc2": "",
                   "--frame-dt-ps": "", "--mobile-ion": "", "--temperature-K": "",
                   "--format": ""}),
    "dynamics": (dynamics, "optional g(r), van Hove, reorientation, tetrahedral angles, "
                 "mobile-ion density", ["--md", "--trajectory", "--arrays", "--figures"],
                 {"--density": ""}),
    "arrhenius": (arrhenius, "Ea, D0 and conductivity from D(T)", ["--diffusion", "--figures"],
                  {}),
    "structure_descriptors": (structure_descriptors, "structure descriptors of the relaxed cell",
                              ["--relax", "--poscar"], {}),
    "elastic": (elastic, "elastic constants and moduli with the MLP", ["--relax"],
                {"--device": "cpu"}),
    "dft_forces": (dft_forces, "DFT forces on the displaced supercells (resumable)",
                   ["--displace", "--forceset", "--workdir"],
                   {"--run-command": "", "--gamma-command": "", "--timeout-min": ""}),
    "dft_validation": (dft_validation, "MLP against DFT phonons on the same snapshots",
                       ["--displace", "--forces", "--forceset", "--dft-forces",
                        "--dft-forceset", "--arrays", "--figures"], {}),
    "aimd": (aimd, "NVT AIMD of one material at one temperature (continues cut runs)",
             ["--displace", "--temperature-K", "--workdir", "--trajectory"],
             {"--run-command": "", "--gamma-command": ""}),
    "aimd_validation": (aimd_validation, "MLP MD against AIMD: D ratio, MSD, g(r), VDOS and "
                        "van Hove overlays",
                        ["--aimd", "--trajectory", "--mlp-diffusion", "--mlp-arrays", "--arrays",
                         "--figures"], {"--mlp-trajectory": ""}),
    "mlp_benchmark": (mlp_benchmark, "another MLP against a validated material's DFT forces",
                      ["--displace", "--dft-forces", "--dft-forceset", "--model-json"],
                      {"--device": "cpu"}),
    "finetune": (finetune, "fine-tune the campaign model on the campaign's DFT forces",
                 ["--dft-forces", "--dft-forceset", "--model-out", "--arrays", "--figures"],
                 {"--device": "cpu", "--aimd-trajectories": None, "--relax-paths": None}),
    "mlp_benchmark_table": (mlp_benchmark_table, "results/campaign/mlp_benchmark.csv "
                            "(not a stage)", ["--results", "--csv", "--summary", "--figure"], {}),
    "validation_table": (validation_table, "results/campaign/validation.csv (not a stage)",
                         ["--results", "--csv"], {}),
    "campaign_table": (campaign_table, "the campaign table (CSV + parquet)",
                       ["--results", "--csv", "--parquet"], {}),
    "campaign_statistics": (campaign_statistics, "correlations with p-values and intervals",
                            ["--table", "--table-result", "--csv"], {}),
    "campaign_clustering": (campaign_clustering, "PCA and k-means of the descriptors",
                            ["--table", "--table-result", "--csv"], {}),
    "campaign_model": (campaign_model, "ML model of log10 D (grouped CV)",
                       ["--table", "--table-result", "--parity", "--predictions"], {}),
    "campaign_figures": (campaign_figures, "campaign figures",
                         ["--table", "--table-result", "--statistics", "--clustering",
                          "--clusters", "--model", "--parity", "--figures"], {}),
    "campaign_summary": (campaign_summary, "results/campaign/summary.md",
                         ["--table", "--table-result", "--statistics", "--clustering", "--model",
                          "--predictions", "--summary"], {}),
    "model": (model, "check that the configured MLP is on this machine (not a stage)",
              ["--backend"], {"--model": ""}),
    "fetch": (fetch, "structures from Materials Project / OQMD, cached and deduplicated "
              "(not a stage: run once before the campaign)", [],
              {"--config": "", "--output": "", "--cache": ""}),
}


#: (command, option) pairs that take a list of files.
MANY_FILES = {("arrhenius", "--diffusion"), ("validation_table", "--results"),
              ("mlp_benchmark_table", "--results"), ("finetune", "--dft-forces"),
              ("finetune", "--dft-forceset"), ("finetune", "--aimd-trajectories"),
              ("finetune", "--relax-paths"),
              ("md_batch", "--temperatures-K"), ("md_batch", "--trajectory"),
              ("md_batch", "--out")} | {
    ("md_pool", opt) for opt in ("--displace", "--stability", "--fc2", "--settings",
                                 "--temperatures-K", "--trajectory", "--out")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="phonion", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (func, text, required, optional) in COMMANDS.items():
        p = sub.add_parser(name, help=text)
        stage = name not in ("model", "fetch", "validation_table", "mlp_benchmark_table",
                             "md_pool")
        if name == "fetch":
            p.add_argument("--source", nargs="+", choices=["mp", "oqmd"],
                           help="sources to query (default: databases.sources)")
            p.add_argument("--refresh", action="store_true",
                           help="ask the databases again instead of reading the cache")
            p.add_argument("--offline", action="store_true",
                           help="never ask: fail when a query is not in the cache")
        if name == "diffusion":  # standalone use needs no settings
            p.add_argument("--settings", default="{}")
            p.add_argument("--out", required=True)
        common = ["--settings", "--out"] if stage and name != "diffusion" else []
        for opt in [*common, *required]:
            p.add_argument(opt, required=True,
                           nargs="+" if (name, opt) in MANY_FILES else None)
        for opt, default in optional.items():
            p.add_argument(opt, default=default,
                           nargs="*" if (name, opt) in MANY_FILES else None)
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    return main_guard(lambda: args.func(args))
