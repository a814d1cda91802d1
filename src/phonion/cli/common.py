"""What every command shares: the stage's settings from ``--settings``, the MLP loaded on a
device and recorded for provenance, the symfc basis file beside ``displace.json``, and the
run command of a DFT stage (an execution detail, from the job's environment)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..runner import Context
from ..settings import SETTINGS


def load_calculator(ctx: Context, device: str):
    """Load the stage's MLP on ``device`` and record it for provenance."""
    from ..calculators import get_calculator

    s = ctx.settings
    loaded = get_calculator(s.backend, s.model, device, s.dtype, s.modal)
    ctx.model = loaded.description
    return loaded


def load_member(s, spec: str, device: str):
    """The ASE calculator of a further committee model ``spec`` ("model" or "model:modal")
    of the backend of settings ``s`` (``stability_recheck.further_models``)."""
    from ..calculators import get_calculator

    model, _, modal = spec.partition(":")
    return get_calculator(s.backend, model, device, s.dtype, modal).calculator


def settings_of(a: argparse.Namespace, **extra):
    """The command's stage settings from ``--settings`` (``extra``: fields not in the JSON,
    such as the MD temperature from the job's wildcard)."""
    return SETTINGS[a.command].from_json(a.settings, **extra)


def basis_cache(displace_json: str) -> Path:
    """The symfc basis file the ``displace`` stage leaves beside its result."""
    from ..displace import BASIS_FILE

    return Path(displace_json).parent / BASIS_FILE


def dft_run_setup(s, a) -> tuple:
    """(engine, protocol, protocol with the run command, run keyword arguments) of a DFT
    stage: the command comes from the job's environment, never from its params."""
    import dataclasses
    import os

    from ..dft import get_engine, protocol_of

    engine, protocol = get_engine(s.engine), protocol_of(s)
    commands = {"command": a.run_command} if a.run_command else {}
    if getattr(a, "gamma_command", "") and s.engine == "vasp":
        commands["gamma_command"] = a.gamma_command
    kwargs: dict = {}
    if s.engine == "cp2k":
        timeout = getattr(a, "timeout_min", "")
        kwargs = {"timeout_s": float(timeout) * 60 if timeout else None,
                  "env": {**os.environ,
                          "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}}
    return engine, protocol, dataclasses.replace(protocol, **commands), kwargs
