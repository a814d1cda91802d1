"""Campaign status: one line per material saying where its chain stands and why."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path

from .io import atomic_path, read_json

#: Stage statuses. ``skipped`` means an earlier stage of the same material did not pass.
STATUSES = ("ok", "rejected", "failed", "error", "skipped")
COLUMNS = ("id", "stage", "status", "reason")


def material_status(stage_files: Iterable[str | Path]) -> tuple[str, str, str]:
    """(stage, status, reason) of one material from its stage results, in pipeline order.

    The first stage that is not ``ok`` (ignoring ``skipped``, which only echoes
    it) decides; otherwise the last stage, which is ``ok``.
    """
    last = ("intake", "ok", "")
    for path in stage_files:
        res = read_json(path)
        row = (res["stage"], res["status"], res.get("reason", ""))
        if res["status"] not in ("ok", "skipped"):
            return row
        if res["status"] == "ok":
            last = row
    return last


def write_status(path: str | Path, materials: Mapping[str, list[str]],
                 rejected: Mapping[str, str]) -> list[tuple[str, str, str, str]]:
    """Write ``status.tsv`` (id, stage, status, reason); return its rows.

    ``materials`` maps id → stage result files; ``rejected`` holds ids refused
    before any job ran (duplicate or unsafe ids).
    """
    rows = [(mid, "intake", "rejected", reason) for mid, reason in rejected.items()]
    rows += [(mid, *material_status(files)) for mid, files in materials.items()]
    rows.sort(key=lambda r: r[0])
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([" ".join(str(c).split()) for c in row])
    return rows


def material_record(mid: str, result_files: Iterable[str | Path], figures: Iterable[str],
                    out: str | Path, log: str | Path | None = None) -> dict:
    """Per-material record: its stage result files in pipeline order, figures and verdict."""
    from .io import write_json_atomic

    files = [str(p) for p in result_files]
    stage, status, reason = material_status(files)
    record = {"material_id": mid, "stage": stage, "status": status, "reason": reason,
              "results": files, "figures": [str(f) for f in figures]}
    write_json_atomic(out, record)
    if log:
        Path(log).write_text(f"{mid}: {stage} {status} {reason}\n")
    return record


def campaign_status(material_files: Iterable[str | Path], out: str | Path,
                    rejected: Mapping[str, str], log: str | Path | None = None) -> None:
    """Write ``status.tsv`` from the per-material records (:func:`material_record`)."""
    materials = {}
    for path in material_files:
        rec = read_json(path)
        materials[rec["material_id"]] = rec["results"]
    rows = write_status(out, materials, rejected)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[2]] = counts.get(row[2], 0) + 1
    summary = f"{len(rows)} materials: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    if log:
        Path(log).write_text(summary + "\n")
    print(f"[status] {summary}", flush=True)
