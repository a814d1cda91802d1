"""Campaign status: one line per material saying where its chain stands and why."""

from __future__ import annotations

import csv
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
