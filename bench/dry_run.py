"""Time and memory of `snakemake -n` (parse + whole DAG) for a campaign of N materials.

N structure files are made by copying the demo CIFs under new names into a temporary folder.
Two cases, each in a fresh Snakemake process:

* ``new``: nothing has run; the dry run plans every stage of every material (the DAG has no
  checkpoints) plus the campaign stages, and prints every job (``--quiet`` keeps the listing
  short, as a user of a large campaign would).
* ``finished``: every output of every material and of the campaign exists (stand-in files with
  modification times in stage order, as a finished campaign leaves them); the dry run walks
  the whole DAG and must find nothing to do.

Usage:
    python bench/dry_run.py [N] [new|finished|both] [POOL]   (defaults 4000, both)

POOL > 0 plans the MD as ``md.engine: torch_sim`` with ``md.batch_materials: POOL`` (one
md_pool rule and job per POOL materials, an md_settings job per material).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the order in which the stages of a finished campaign wrote their outputs
STAGE_ORDER = [
    "intake", "relax", "structure_descriptors", "elastic", "displace", "forces", "fit_ifc",
    "stability", "stability_recheck", "phonon_descriptors", "md", "diffusion", "dynamics",
    "arrhenius", "status", "campaign_inputs", "campaign_table", "campaign_statistics",
    "campaign_clustering", "campaign_model", "campaign_figures", "campaign_summary",
]


#: extra --config values (bench/dry_run.py N CASE POOL)
EXTRA: list[str] = []


def _snakemake(folder: Path, results: Path, *extra: str) -> tuple[float, str]:
    """Run ``snakemake -n`` in a child; return (wall s, stdout+stderr); children's peak RSS
    is read by the caller from ``resource.getrusage``."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "1", *extra, *EXTRA,
           "--config", f"structures={{folder: {folder}}}", f"results={results}"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(proc.stderr[-2000:])
    return wall, proc.stdout + proc.stderr


def _finish(folder: Path, results: Path, names: list[str]) -> int:
    """Write stand-ins for every output of a finished campaign: the output list of one
    material (from ``snakemake --summary``) repeated for every material, plus the campaign's;
    modification times increase stage by stage. Returns the number of files written."""
    one = Path(tempfile.mkdtemp())
    (one / "s").mkdir()
    shutil.copy(folder / f"{names[0]}.cif", one / "s")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--summary", "--cores", "1", "--config",
         f"structures={{folder: {one / 's'}}}", f"results={one / 'r'}"],
        cwd=ROOT, capture_output=True, text=True, check=True)
    rows = [line.split("\t") for line in proc.stdout.splitlines() if "\t" in line][1:]
    base = time.time() - 3600
    written = 0
    for path, _date, rule, *_ in rows:
        rank = STAGE_ORDER.index(rule)  # a new stage must be placed in STAGE_ORDER
        rel = Path(path).relative_to(one / "r")
        per_material = rel.parts[0] == "materials"
        for name in names if per_material else [None]:
            target = results / (Path("materials", name, *rel.parts[2:]) if name else rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.name == "figures":
                target.mkdir(exist_ok=True)
            else:
                target.touch()
            os.utime(target, (base + 10 * rank, base + 10 * rank))
            written += 1
    shutil.rmtree(one)
    return written


def main(n: int, cases: list[str]) -> None:
    demo = sorted((ROOT / "config/demo/structures").glob("*.cif"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "structures"
        folder.mkdir()
        names = []
        for k in range(n):
            src = demo[k % len(demo)]
            names.append(f"{src.stem}-{k:05d}")
            shutil.copy(src, folder / f"{names[-1]}.cif")
            os.utime(folder / f"{names[-1]}.cif", (time.time() - 7200,) * 2)
        results = Path(tmp) / "results"
        for case in cases:
            if case == "finished":
                files = _finish(folder, results, names)
                print(f"finished campaign: {files} output files in place")
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            wall, out = _snakemake(folder, results, "--quiet", "rules")
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            if case == "new":
                table = out[out.index("Job stats:"):].split("\n\n")[0]
                jobs = table.splitlines()[-1].split()[-1]
                summary = f"{jobs} jobs planned"
            else:
                if "Nothing to be done" not in out:
                    sys.exit("finished campaign: the dry run wants to run jobs:\n" + out[-3000:])
                summary = "nothing to be done"
            mem = f"{peak / 1024:.0f} MB" if peak > before else "peak below an earlier case"
            print(f"{n} materials, {case}: snakemake -n in {wall:.1f} s, {summary}, "
                  f"peak memory {mem}")


if __name__ == "__main__":
    args = sys.argv[1:]
    size = int(args[0]) if args else 4000
    which = args[1] if len(args) > 1 else "both"
    # the demo config's fd_check names NaCl, which the copies are not called
    extra = Path(tempfile.mkdtemp()) / "bench.yaml"
    text = "phonons: {fd_check: {materials: []}}\n"
    if len(args) > 2 and int(args[2]) > 0:
        text += f"md: {{engine: torch_sim, batch_materials: {int(args[2])}}}\n"
    extra.write_text(text)
    EXTRA.extend(["--configfile", str(ROOT / "config/config.yaml"), str(extra)])
    main(size, ["new", "finished"] if which == "both" else [which])
