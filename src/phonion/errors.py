"""Domain exceptions. Every message names what is wrong and what to set.

The stage runner (:mod:`phonion.runner`) turns them into a stage status:
:class:`StructureRejected` and :class:`UnsupportedElements` → ``rejected`` (input the
campaign cannot use), :class:`DamagedFile` → ``error`` (the file is removed so that a
rerun regenerates it), every other :class:`PhonionError` → ``failed`` (the science says
no), any other exception → ``error`` with its traceback in the log.
"""

from __future__ import annotations

import os


class PhonionError(Exception):
    """Base class of every error phonion raises on purpose."""


class ConfigError(PhonionError):
    """A configuration value is missing or inconsistent."""


class StructureRejected(PhonionError):
    """A structure fails triage; the message is the one-line reason for status.tsv."""


class InputRejected(StructureRejected):
    """A user's input file (e.g. a trajectory for the standalone diffusion command) cannot
    be used; the message says why. The file is never touched."""

    def __init__(self, path: str | os.PathLike, why: str):
        self.path = os.fspath(path)
        super().__init__(f"{self.path}: {why}")


class ModelUnavailable(PhonionError):
    """An MLP cannot be loaded offline (needs a download or a missing package)."""


class UnsupportedElements(PhonionError):
    """The chosen model has no parameters for some elements of a structure."""


class DamagedFile(PhonionError):
    """A file phonion wrote earlier is missing, truncated or holds invalid data."""

    def __init__(self, path: str | os.PathLike, why: str):
        self.path = os.fspath(path)
        super().__init__(f"damaged file {self.path}: {why}")
