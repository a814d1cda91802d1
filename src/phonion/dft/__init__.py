"""DFT engines behind one interface (issue 14).

A stage that needs DFT (relaxation, static forces on displaced supercells, AIMD) asks
:func:`get_engine` for the configured engine and uses only the verbs of
:class:`DFTEngine`; it never knows which code ran. Each engine is one module
(:mod:`phonion.dft.vasp`, :mod:`phonion.dft.cp2k`); its inputs follow one protocol whose
every choice is a field of the engine's settings class, and its outputs come back in
phonion's own layouts:

- forces: ``(forces eV/Å (atoms × 3), energy eV)`` per static run, gathered into a
  :class:`~phonion.formats.ForceSet` (``forces.h5``) by :func:`forceset_from_runs`;
- trajectories: the dict of :func:`phonion.formats.read_trajectory` (unwrapped positions
  Å, velocities Å/ps, ``frame_dt_ps``, …), so the diffusion analysis reads AIMD unchanged.

A run that failed, did not converge or was cut short is reported by ``check`` as
``(False, one-line reason)`` and raises :class:`DFTRunFailed` when its outputs are asked
for: it is never parsed as a success.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from ase import Atoms

from ..errors import ConfigError
from ..formats import ForceSet
from .common import DFTRunFailed


@runtime_checkable
class DFTEngine(Protocol):
    """What every DFT engine provides. ``settings`` is the engine's settings dataclass."""

    name: str

    def write_static(self, atoms: Atoms, directory: str | os.PathLike, settings: Any,
                     **kwargs: Any) -> None:
        """Inputs of a single-point energy and forces calculation."""

    def write_relax(self, atoms: Atoms, directory: str | os.PathLike, settings: Any,
                    **kwargs: Any) -> None:
        """Inputs of a relaxation of positions and cell."""

    def write_aimd(self, atoms: Atoms, directory: str | os.PathLike, settings: Any,
                   temperature_K: float, steps: int, **kwargs: Any) -> None:
        """Inputs of an NVT AIMD run of ``steps`` steps at ``temperature_K``."""

    def check(self, directory: str | os.PathLike) -> tuple[bool, str]:
        """``(True, '')`` for a complete, converged run, else ``(False, reason)``."""

    def read_forces(self, directory: str | os.PathLike) -> tuple[np.ndarray, float]:
        """Forces (eV/Å, atoms × 3, in the order of the input structure) and the energy
        (eV) of a checked static run; :class:`DFTRunFailed` otherwise."""

    def read_relaxed(self, directory: str | os.PathLike) -> Atoms:
        """The relaxed structure of a checked relaxation, atoms in the order of the input,
        its energy (eV) in ``info["energy_eV"]``; :class:`DFTRunFailed` otherwise."""

    def read_relax_path(self, directory: str | os.PathLike) -> dict:
        """Every step of a relaxation with its DFT forces: ``symbols``, ``positions_A``,
        ``cells_A``, ``forces_eV_A``, ``energies_eV``, ``steps`` (atoms in input order)."""

    def read_trajectory(self, directory: str | os.PathLike, **kwargs: Any) -> dict:
        """The AIMD trajectory of a run directory in :func:`~phonion.formats.read_trajectory`'s
        layout."""

    def continue_aimd(self, previous: str | os.PathLike, directory: str | os.PathLike,
                      settings: Any, total_steps: int) -> dict | None:
        """Inputs of the next segment of an AIMD run that stopped before ``total_steps``
        (None when it got there)."""

    def concatenate_segments(self, directories: Sequence[str | os.PathLike],
                             temperature_K: float | None = None) -> dict:
        """One trajectory from the segments of an AIMD run, every step once."""


class ModuleEngine:
    """A :class:`DFTEngine` whose verbs are the functions of one engine module
    (:mod:`phonion.dft.vasp`, :mod:`phonion.dft.cp2k`): one adapter for every engine."""

    def __init__(self, name: str, module, settings_class: type):
        self.name, self.module, self.settings_class = name, module, settings_class

    def write_static(self, atoms, directory, settings, **kwargs):
        self.module.write_static(atoms, directory, settings, **kwargs)

    def write_relax(self, atoms, directory, settings, **kwargs):
        self.module.write_relax(atoms, directory, settings, **kwargs)

    def write_aimd(self, atoms, directory, settings, temperature_K, steps, **kwargs):
        self.module.write_aimd(atoms, directory, settings, temperature_K, steps, **kwargs)

    def check(self, directory, settings=None):
        return self.module.check(directory, settings)

    def read_forces(self, directory):
        return self.module.read_forces(directory)

    def read_relaxed(self, directory):
        return self.module.read_relaxed(directory)

    def read_relax_path(self, directory):
        return self.module.read_relax_path(directory)

    def read_trajectory(self, directory, **kwargs):
        return self.module.read_trajectory(directory, **kwargs)

    def continue_aimd(self, previous, directory, settings, total_steps):
        return self.module.continue_aimd(previous, directory, settings, total_steps)

    def concatenate_segments(self, directories, temperature_K=None):
        return self.module.concatenate_segments(directories, temperature_K)

    def run(self, directory, settings, **kwargs):
        self.module.run(directory, settings, **kwargs)


def get_engine(name: str) -> DFTEngine:
    """The engine called ``name`` (config ``dft.engine``)."""
    if name == "vasp":
        from . import vasp

        return ModuleEngine("vasp", vasp, vasp.VaspSettings)
    if name == "cp2k":
        from . import cp2k

        return ModuleEngine("cp2k", cp2k, cp2k.Cp2kSettings)
    raise ConfigError(f"unknown DFT engine '{name}'; set dft.engine to one of: vasp, cp2k")


def forceset_from_runs(engine: DFTEngine, supercell: Atoms, displacements_A: np.ndarray,
                       directories: Sequence[str | os.PathLike],
                       reference: str | os.PathLike | None = None) -> ForceSet:
    """The :class:`~phonion.formats.ForceSet` of static runs on the displaced supercells
    (one directory per snapshot, in the order of ``displacements_A``), with the residual
    forces of the undisplaced supercell (``reference``) subtracted when it is given (zero
    residual otherwise). Every run is checked first: one failed run fails the set."""
    displacements_A = np.asarray(displacements_A, float)
    if len(directories) != len(displacements_A):
        raise ValueError(f"{len(directories)} run directories for {len(displacements_A)} "
                         "displaced supercells")
    n = len(supercell)
    f0 = np.zeros((n, 3))
    if reference is not None:
        f0, _ = engine.read_forces(reference)
    forces, energies = [], []
    for d in directories:
        f, e = engine.read_forces(d)
        if f.shape != (n, 3):
            raise DFTRunFailed(d, f"{len(f)} atoms in the output, {n} in the supercell")
        forces.append(f - f0)
        energies.append(e)
    return ForceSet(supercell.copy(), displacements_A, np.asarray(forces), f0,
                    np.asarray(energies), meta={"engine": engine.name,
                                                "runs": [os.fspath(d) for d in directories]})


def protocol_of(s):
    """The engine's settings object of a DFT stage's settings ``s`` (``DftForcesSettings``
    or a subclass: ``s.engine`` and its section ``dft.<engine>``), defaults for keys not in
    config; a key that is not a setting of the engine is a :class:`ConfigError`."""
    from dataclasses import fields

    cls = get_engine(s.engine).settings_class
    names = {f.name for f in fields(cls)}
    section = getattr(s, s.engine)
    unknown = sorted(set(section) - names)
    if unknown:
        raise ConfigError(f"dft.{s.engine} has no setting {', '.join(unknown)} "
                          "(docs/dft.md lists them)")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in section.items()})

