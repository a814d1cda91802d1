"""One JSON line per structure for the benchmark scripts: a structure that fails is recorded
with its error and the run goes on."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable


def each_structure(names: Iterable[str], measure: Callable[[str], dict]) -> None:
    """Print ``measure(name)`` as a JSON line for every name, or the error it raised."""
    for name in names:
        try:
            print(json.dumps(measure(name)), flush=True)
        except Exception as exc:  # noqa: BLE001 - one structure's failure is recorded
            print(json.dumps({"structure": name, "error": f"{type(exc).__name__}: {exc}"}),
                  flush=True)
