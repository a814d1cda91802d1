"""The workflow's config schema (``workflow/schemas/config.schema.yaml``) checked outside
Snakemake, e.g. for ``phonion fetch --config``: a wrong key is named, never skipped."""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError

#: The schema the Snakefile validates every config against.
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def check_config(config: dict, where: str) -> None:
    """Validate a campaign config against the schema (jsonschema, part of the workflow
    environment). Raises :class:`ConfigError` naming the key, or saying why it cannot check."""
    try:
        import jsonschema
    except ImportError:
        raise ConfigError(f"{where}: cannot check the config without jsonschema "
                          "(pip install jsonschema, or use the workflow environment)") from None
    import yaml

    if not SCHEMA_FILE.is_file():
        raise ConfigError(f"{where}: no schema at {SCHEMA_FILE}: phonion runs from its checkout "
                          "(pip install -e .)")
    schema = yaml.safe_load(SCHEMA_FILE.read_text())
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(config))
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ConfigError(f"{where}: {key}: {error.message}")
