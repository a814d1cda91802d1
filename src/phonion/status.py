"""Campaign status: one line per material saying where its chain stands and why."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import DamagedFile
from .formats import atomic_path, read_result

COLUMNS = ("id", "stage", "status", "reason")


def material_status(results: Iterable[dict]) -> tuple[str, str, str]:
    """(stage, status, reason) of one material from its stage results, in pipeline order.

    The first stage that is not ``ok`` (ignoring ``skipped``, which only echoes it)
    decides; otherwise the last stage that is ``ok``, with its reason (a warning or note)
    when it has one.
    """
    last = ("intake", "ok", "")
    for res in results:
        row = (res["stage"], res["status"], res.get("reason", ""))
        if res["status"] not in ("ok", "skipped"):
            return row
        if res["status"] == "ok":
            last = row
    return last


def material_of(path: str | Path) -> str:
    """Material id of a stage result path ``…/materials/{id}/{stage}/…``."""
    parts = Path(path).parts
    return parts[len(parts) - 1 - parts[::-1].index("materials") + 1]


def write_status(path: str | Path, rows: Iterable[tuple[str, str, str, str]]) -> list:
    """Write ``status.tsv`` (id, stage, status, reason), sorted by id; return the rows."""
    rows = sorted(rows, key=lambda r: r[0])
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([" ".join(str(c).split()) for c in row])
    return rows


def campaign_status(result_files: Iterable[str | Path], out: str | Path,
                    rejected: Mapping[str, str], log: str | Path | None = None) -> list:
    """Write ``status.tsv`` from every stage result of every material (in pipeline order
    per material) and the ids refused before any job ran (``rejected``: id → reason)."""
    per_material: dict[str, list[dict]] = {}
    damaged: dict[str, str] = {}
    for path in result_files:
        mid = material_of(path)
        try:
            per_material.setdefault(mid, []).append(read_result(path))
        except DamagedFile as exc:
            damaged.setdefault(mid, str(exc))
    rows = [(mid, "intake", "rejected", reason) for mid, reason in rejected.items()]
    for mid, results in per_material.items():
        if mid in damaged:
            rows.append((mid, "status", "error", damaged[mid] + "; rerun to regenerate it"))
        else:
            rows.append((mid, *material_status(results)))
    rows = write_status(out, rows)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[2]] = counts.get(row[2], 0) + 1
    summary = f"{len(rows)} materials: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    if log:
        Path(log).write_text(summary + "\n")
    print(f"[status] {summary}", flush=True)
    return rows


def regenerate(entries: Iterable[tuple[str, list[str], str | None]], status_path: str | Path,
               dry_run: bool = False) -> list[str]:
    """Stage results to produce again because files of their stage went missing or were
    damaged after the campaign's status table was written.

    ``entries``: per stage and material, (result JSON, other files, figure folder or None).
    A missing file makes its result a target. A result changed after the status table that
    is no longer a valid result, or a file changed after its result was written that no
    longer matches the size/hash record in the result, is damaged: its result is removed
    (only reported in a dry run) and becomes a target. Only files newer than the status
    table or than their result are opened: a finished campaign costs a ``stat`` per file.
    """
    t_status = Path(status_path).stat().st_mtime
    targets = []
    for result, files, figures in entries:
        result = Path(result)
        try:
            problem = _damage(result, [Path(f) for f in files], figures, t_status)
        except FileNotFoundError:
            problem = ""
            targets.append(str(result))
        if problem:
            print(f"phonion: {problem}: " + ("would regenerate" if dry_run else "regenerating")
                  + f" {result.parent}", file=sys.stderr, flush=True)
            if not dry_run:
                result.unlink(missing_ok=True)
            targets.append(str(result))
    return targets


def _damage(result: Path, files: list[Path], figures: str | None, t_status: float) -> str:
    """'' when the stage's files are intact, else what is wrong (FileNotFoundError when the
    result itself is missing)."""
    from .formats import verify_record

    t_result = result.stat().st_mtime
    record = None
    if t_result > t_status:
        try:
            record = read_result(result)
        except DamagedFile as exc:
            return str(exc)
    for path in files + ([Path(figures)] if figures else []):
        if not path.exists():
            return f"{path} is missing"
        if path.stat().st_mtime <= t_result:
            continue
        try:  # changed after its stage finished: check against the stage's record
            record = record or read_result(result)
        except DamagedFile as exc:
            return str(exc)
        if path.is_dir():  # a figure folder: every figure the stage made is still there
            gone = [f for f in record.get("figures", []) if not (path / f).exists()]
            if gone:
                return f"figure {path / gone[0]} is missing"
        else:
            why = verify_record(path, record.get("files", {}).get(path.name, {}))
            if why:
                return f"{path} changed after its stage wrote it ({why})"
    return ""


def status_after_failure(materials: Mapping[str, list[tuple[str, str, str]]],
                         out: str | Path, rejected: Mapping[str, str]) -> list:
    """``status.tsv`` when Snakemake stops with failed jobs (its ``onerror`` handler): every
    material gets its row from the results that exist; at the first stage without a
    result the chain stopped outside phonion (a killed job, out of memory, a wall-time
    limit): ``error`` naming the stage and its log. A rerun retries exactly those jobs.

    ``materials``: id → [(stage, result JSON, log file)] in pipeline order.
    """
    rows = [(mid, "intake", "rejected", reason) for mid, reason in rejected.items()]
    for mid, stages in materials.items():
        results = []
        for stage, result, log in stages:
            try:
                results.append(read_result(result))
                continue
            except DamagedFile:
                pass
            if Path(log).exists():
                why = (f"the {stage} job failed without a result (killed, out of memory or "
                       f"past its wall time?); see {log}; rerun to retry")
            else:
                why = f"{stage} did not run (the workflow stopped first); rerun"
            found = material_status(results)
            rows.append((mid, stage, "error", why) if found[1] in ("ok", "skipped")
                        else (mid, *found))
            break
        else:
            rows.append((mid, *material_status(results)))
    return write_status(out, rows)
