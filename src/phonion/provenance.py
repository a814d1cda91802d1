"""Provenance records: package versions, interpreter, model identity, parameters."""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import socket
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from . import __version__

#: Packages whose versions change results; missing ones are simply omitted.
TRACKED_PACKAGES = (
    "numpy", "scipy", "ase", "spglib", "pymatgen", "phonopy", "symfc", "pheasy",
    "torch", "e3nn", "mace-torch", "fairchem-core", "chgnet", "sevenn", "h5py",
)


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` in *this* interpreter's environment."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file (model checkpoints, input structures)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def provenance(parameters: dict[str, Any] | None = None,
               model: dict[str, Any] | None = None) -> dict[str, Any]:
    """The provenance block stored in every result file.

    ``model`` is the calculator description from
    :func:`phonion.calculators.describe` (backend, name, file, sha256).
    """
    return {
        "phonion_version": __version__,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "environment_prefix": sys.prefix,
        "host": socket.gethostname(),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "packages": package_versions(),
        "model": model or {},
        "parameters": parameters or {},
    }
