"""Commands that are not stages: ``model`` (is the configured MLP on this machine?) and
``fetch`` (structures from Materials Project / OQMD, run once before a campaign;
:mod:`phonion.databases`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def model(a: argparse.Namespace) -> int:
    """Not a stage: is the configured model on this machine? Prints its file, or the reason
    (exit 2). The workflow asks this of each backend environment when it parses."""
    from ..calculators import model_file
    from ..errors import ModelUnavailable

    try:
        print(model_file(a.backend, a.model) or "analytic potential (no file)")
        return 0
    except ModelUnavailable as exc:
        print(exc)
        return 2


def fetch(a: argparse.Namespace) -> int:
    """Not a stage: run once before a campaign. Query Materials Project and/or OQMD (or read
    their cache), filter, deduplicate, write the structures table (docs/databases.md)."""
    import yaml

    from ..databases import DatabaseSettings, summary
    from ..databases import fetch as run_fetch
    from ..errors import PhonionError
    from ..schema import check_config

    try:
        config = {}
        if a.config:
            try:
                config = yaml.safe_load(Path(a.config).read_text()) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise PhonionError(f"cannot read --config {a.config}: {exc}") from None
            check_config(config, a.config)
        s = DatabaseSettings.from_config(config, sources=tuple(a.source) if a.source else None,
                                         output=a.output or None, cache=a.cache or None)
        result = run_fetch(s, refresh=a.refresh, offline=a.offline)
    except PhonionError as exc:
        print(f"phonion fetch: {exc}", file=sys.stderr, flush=True)
        return 2
    print(summary(result, s), flush=True)
    return 0
