"""Files of the campaign analyses: CSV rows written atomically, NaN as JSON null, an
analysis result that did not finish read as a skip with its reason."""

from __future__ import annotations

import csv

from ..formats import atomic_path, read_result


def write_rows(path, rows: list[dict], columns: list[str]) -> None:
    """A CSV of ``rows`` (header only when there are none), atomically."""
    cols = list(dict.fromkeys([*columns, *(k for r in rows for k in r)]))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def finite(obj):
    """NaN and infinities → None (JSON null): a campaign result reports a missing number as
    missing, never as a number."""
    import math

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def read_rows(path) -> list[dict]:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:  # a failed analysis leaves an empty file
        return []
    return frame.to_dict("records")


def read_analysis(path) -> dict:
    """An analysis result; one that did not finish (``error``, ``skipped``) comes back
    as ``skipped`` with its stage, status and reason, plus empty statistics, so that the
    figures and the summary report it and go on with the other analyses."""
    res = read_result(path)
    if res.get("status", "ok") == "ok":
        return res
    why = f"{res.get('stage', 'analysis')} {res['status']}: {res.get('reason', '')}"
    return {**res, "skipped": why, "descriptors": [], "versus_d": {},
            "correlogram": {"names": []}}
