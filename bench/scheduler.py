"""Scheduler cost of phonion's DAG shape: Snakemake process CPU per job against the number
of materials, with per-material checkpoints (the layout before issue 9) and without (the
static layout of today).

A synthetic workflow with phonion's DAG shape — the real rules and their dependencies, one
MD temperature, trivial job bodies (``echo ok > {output}``) — runs for real with
``--cores 2``. The Snakemake process's
own CPU time (``RUSAGE_SELF``: the job bodies run in child processes and are not counted)
and peak memory are recorded. ``checkpoints`` makes relax, stability, phonon_descriptors and
diffusion checkpoints and adds the per-material record rule whose input function walks
them, as phonion did until issue 9; ``static`` is today's layout.

Snakemake's default job selector solves an integer program over all remaining jobs at every
scheduling round; ``--scheduler greedy`` (what both profiles set) does not. The third argument
picks it:

    python bench/scheduler.py static greedy 25 50 100 200 400
    python bench/scheduler.py static ilp 25 50 100 200 400
    python bench/scheduler.py checkpoints ilp 25 50 100 200 400
    python bench/scheduler.py plot curve.jsonl docs/figures/scheduler.png
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: stage -> upstream stages. ``static``: phonion's DAG today, 11 jobs per material (one MD
#: temperature, the optional dynamics analysis on) and the status aggregate.
STATIC = {
    "intake": [], "relax": ["intake"], "displace": ["relax"], "forces": ["displace"],
    "fit_ifc": ["displace", "forces"], "stability": ["fit_ifc"],
    "phonon_descriptors": ["stability"], "md": ["stability"], "diffusion": ["md"],
    "dynamics": ["md"], "arrhenius": ["diffusion"],
}
#: ``checkpoints``: phonion's DAG before issue 9, 14 jobs per material with separate figure
#: rules and the per-material record rule; relax, stability, phonon_descriptors and
#: diffusion were checkpoints.
OLD = {
    "intake": [], "relax": ["intake"], "displace": ["relax"], "forces": ["displace"],
    "fit_ifc": ["displace", "forces"], "stability": ["fit_ifc"],
    "phonon_descriptors": ["stability"], "phonon_figures": ["phonon_descriptors"],
    "md": ["stability"], "diffusion": ["md"], "diffusion_figures": ["diffusion"],
    "dynamics": ["md"], "arrhenius": ["diffusion"],
}
CHECKPOINTS = ("relax", "stability", "phonon_descriptors", "diffusion")

RUNNER = """
import resource, sys, json, atexit
out = sys.argv[1]
def report():
    r = resource.getrusage(resource.RUSAGE_SELF)
    json.dump({"cpu_s": r.ru_utime + r.ru_stime, "max_rss_mb": r.ru_maxrss / 1024},
              open(out, "w"))
atexit.register(report)
from snakemake.cli import main
sys.argv = ["snakemake", *sys.argv[2:]]
main()
"""


def _path(stage: str) -> str:
    return f"out/{{mid}}/{stage}.txt"


def snakefile(shape: str) -> str:
    """The synthetic workflow of ``shape`` ('static' or 'checkpoints')."""
    chain = OLD if shape == "checkpoints" else STATIC
    lines = ["MATERIALS = [f'm{i:05d}' for i in range(config['materials'])]", ""]
    for stage, ups in chain.items():
        kind = "checkpoint" if shape == "checkpoints" and stage in CHECKPOINTS else "rule"
        inputs = "".join(f"        '{_path(u)}',\n" for u in ups)
        lines += [f"{kind} {stage}:", "    input:", inputs or "        [],",
                  "    output:", f"        '{_path(stage)}',",
                  "    shell:", "        'echo ok > {output}'", ""]
    if shape == "checkpoints":
        lines += [
            "def ok(path):",
            "    return open(path).read().strip() == 'ok'",
            "",
            "def record_inputs(wc):",
            "    files = [checkpoints.relax.get(mid=wc.mid).output[0]]",
            "    if not ok(files[-1]):",
            "        return files",
            "    files.append(checkpoints.stability.get(mid=wc.mid).output[0])",
            "    if not ok(files[-1]):",
            "        return files",
            "    files.append(checkpoints.phonon_descriptors.get(mid=wc.mid).output[0])",
            "    files.append(checkpoints.diffusion.get(mid=wc.mid).output[0])",
            "    return files + [f'out/{wc.mid}/{s}.txt' for s in "
            "('phonon_figures', 'diffusion_figures', 'dynamics', 'arrhenius')]",
            "",
        ]
        lines += ["rule record:", "    input: record_inputs",
                  f"    output: '{_path('record')}'",
                  "    shell: 'cat {input} > /dev/null; echo ok > {output}'", "",
                  "rule status:", "    input: expand('out/{mid}/record.txt', mid=MATERIALS)",
                  "    output: 'status.txt'", "    shell: 'cat {input} > {output}'", ""]
    else:  # the status aggregate reads every stage result of every material
        lines += ["rule status:",
                  "    input: expand('out/{mid}/{stage}.txt', mid=MATERIALS, stage="
                  + repr(list(STATIC)) + ")",
                  "    output: 'status.txt'", "    shell: 'cat {input} > {output}'", ""]
    return "\n".join(lines)


def measure(shape: str, n: int, scheduler: str = "greedy", cores: int = 2,
            extra: tuple[str, ...] = ()) -> dict:
    """Run the synthetic workflow of ``n`` materials; return CPU/job, memory and wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "Snakefile").write_text(snakefile(shape))
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", RUNNER, str(work / "usage.json"),
                               "status.txt", "--cores", str(cores), "--quiet", "all",
                               "--scheduler", scheduler, *extra,
                               "--config", f"materials={n}"],
                              cwd=work, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-2000:])
        wall = time.perf_counter() - t0
        usage = json.loads((work / "usage.json").read_text())
    jobs = n * (len(OLD) + 1 if shape == "checkpoints" else len(STATIC)) + 1
    return {"shape": shape, "scheduler": scheduler, "materials": n, "jobs": jobs,
            "cpu_s": round(usage["cpu_s"], 2),
            "cpu_per_job_s": round(usage["cpu_s"] / jobs, 4),
            "max_rss_mb": round(usage["max_rss_mb"]), "wall_s": round(wall, 1)}


def plot(jsonl: str, png: str) -> None:
    """CPU per job against materials, one line per (shape, scheduler), from the JSON lines
    this script prints."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [json.loads(line) for line in Path(jsonl).read_text().splitlines()
            if line.startswith("{")]
    fig, ax = plt.subplots(figsize=(6, 4))
    labels = {("checkpoints", "ilp"): "before: 4 checkpoints per material, default scheduler",
              ("static", "ilp"): "static DAG, default (ILP) scheduler",
              ("static", "greedy"): "now: static DAG, --scheduler greedy"}
    for key, label in labels.items():
        pts = sorted((r["materials"], r["cpu_per_job_s"]) for r in runs
                     if (r["shape"], r["scheduler"]) == key and not r.get("options"))
        if pts:
            ax.plot(*zip(*pts, strict=True), "o-", label=label)
    ax.set_xscale("log")
    sizes = sorted({r["materials"] for r in runs})
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("materials in the campaign")
    ax.set_ylabel("Snakemake process CPU per job (s)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.set_title("Scheduler cost of phonion's DAG shape (2 cores, trivial jobs)", fontsize=9)
    fig.savefig(png, dpi=150, bbox_inches="tight")


if __name__ == "__main__":
    if sys.argv[1] == "plot":
        plot(sys.argv[2], sys.argv[3])
        sys.exit()
    shape, scheduler, *rest = sys.argv[1:]
    sizes = [int(a) for a in rest if a.isdigit()]
    extra = tuple(a for a in rest if not a.isdigit())  # further Snakemake options
    for n in sizes:
        print(json.dumps({**measure(shape, n, scheduler, extra=extra), "options": extra}),
              flush=True)
