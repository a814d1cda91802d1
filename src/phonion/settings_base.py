"""The settings base class: a frozen dataclass per stage whose fields name where in the
campaign config they come from (:func:`config_field`), with a canonical JSON round trip.

A foundation module (standard library only): :mod:`phonion.settings` defines the stages'
settings on it, and the DFT engines (:mod:`phonion.dft.cp2k`, :mod:`phonion.dft.vasp`)
define their protocols on it without importing the stage registry.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


def config_field(path: str, default: Any = None, **meta: Any):
    """A field read from config ``path`` (``section.key`` or ``section.sub.key``)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default),
                     metadata={"config": path, **meta})
    return field(default=default, metadata={"config": path, **meta})


@dataclass(frozen=True)
class Settings:
    """Base class: JSON round trip and construction from the campaign config."""

    SECTION: ClassVar[str] = ""

    def canonical(self) -> Settings:
        """The same settings with values that cannot change the result reset to their
        defaults (e.g. a Langevin friction when another thermostat runs), so that editing
        them reruns nothing."""
        return self

    def to_json(self) -> str:
        return canonical_json(self)

    @classmethod
    def from_json(cls, text: str, **extra: Any):
        """Rebuild from :meth:`to_json` output (``extra``: fields not in the JSON, such as
        the MD temperature taken from the job's wildcard)."""
        data = {**json.loads(text), **extra}
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise TypeError(f"{cls.__name__} has no settings {', '.join(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def canonical_json(settings: Settings, exclude: tuple[str, ...] = ()) -> str:
    """Compact, key-sorted JSON of the settings (the form that goes into params)."""
    data = {k: v for k, v in dataclasses.asdict(settings).items()
            if k not in exclude and not is_wildcard(type(settings), k)}
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def is_wildcard(cls: type, name: str) -> bool:
    return any(f.name == name and f.metadata.get("wildcard") for f in fields(cls))


@dataclass(frozen=True)
class CalculatorSettings(Settings):
    """The MLP that a stage evaluates (config ``calculator``); the device is an execution
    detail, passed to the job separately, so moving MD to a GPU reruns nothing."""

    backend: str = config_field("calculator.backend", "sevenn")
    model: str = config_field("calculator.model", "7net-0")
    dtype: str = config_field("calculator.dtype", "float64")
    modal: str = config_field("calculator.modal", "")

    def calculator(self) -> dict:
        return {"backend": self.backend, "model": self.model, "dtype": self.dtype,
                "modal": self.modal}
