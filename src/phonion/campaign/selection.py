"""Materials picked from the campaign table (issue 14: AIMD for the "top k by a
descriptor" once the table exists). Read at workflow parse time, so it uses the standard
library only (no pandas import on every Snakemake start)."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from ..errors import ConfigError


def top_materials(table_csv: str | os.PathLike, column: str, k: int,
                  largest: bool = True, exclude: tuple[str, ...] = ()) -> list[str]:
    """The ``k`` material ids of ``table_csv`` (``results/campaign/table.csv``) with the
    largest (or smallest) finite ``column``, one value per material (its first row: the
    descriptors are per material), in that order; ties by id. Materials in ``exclude``
    are skipped. [] when the table does not exist yet. A column the table does not have is
    a :class:`~phonion.errors.ConfigError` listing the numeric descriptor columns."""
    path = Path(table_csv)
    if k <= 0 or not path.is_file():
        return []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        if column not in columns:
            names = [c for c in columns if c.startswith(("ph_", "st_", "el_", "d_"))]
            raise ConfigError(f"dft.aimd.top_k.descriptor '{column}' is not a column of "
                              f"{path}; choose one of: {', '.join(names)}")
        values: dict[str, float] = {}
        for row in reader:
            mid = row.get("id", "")
            if mid in values or mid in exclude:
                continue
            try:
                v = float(row[column])
            except (TypeError, ValueError):
                continue
            if math.isfinite(v):
                values[mid] = v
    order = sorted(values, key=lambda m: ((-values[m] if largest else values[m]), m))
    return order[:k]
