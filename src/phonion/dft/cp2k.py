"""CP2K: Quickstep (GPW) inputs, runs as an argument list, and parsers of CP2K's output,
force and MD files into phonion's force and trajectory layouts (issue 14).

Verbs, as in :mod:`phonion.dft.vasp`: :func:`write_static`, :func:`write_relax`,
:func:`write_aimd` (inputs ``cp2k.inp`` plus :data:`META_FILE`), :func:`start` /
:func:`run` (CP2K started without a shell, output in ``cp2k.out``), :func:`check`
(complete and converged, or a one-line reason), :func:`read_forces`,
:func:`read_trajectory`, :func:`continue_aimd` (the next segment of an AIMD run that
stopped, from CP2K's own ``.restart`` file through ``EXT_RESTART``) and
:func:`concatenate_segments` (one trajectory of all segments, every MD step once).

The protocol: PBE, GTH pseudopotentials (``GTH_POTENTIALS``) and MOLOPT basis sets
(``BASIS_MOLOPT``, DZVP-MOLOPT-SR-GTH) from the CP2K data directory (Debian
``cp2k-data``: ``/usr/share/cp2k``), Γ point only, orbital-transformation SCF; AIMD in the
NVT ensemble with a Nosé–Hoover chain at seed 000's 1.5 fs. Every choice is a field of
:class:`Cp2kSettings`; their sources are in ``docs/dft.md``.

Units: CP2K prints energies in Hartree, forces in Hartree/Bohr, MD positions in Å and
velocities (as phonion asks for them) in Bohr per atomic time unit; all are converted with
:mod:`ase.units` (eV, eV/Å, Å/ps).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
from ase import Atoms, units

from ..errors import ConfigError, InputRejected
from .common import DFTRunFailed, command_argv, s_one_line
from .cp2k_inputs import (  # noqa: F401 - verbs of the engine (phonion.dft.ModuleEngine)
    WFN_GUESS,
    Cp2kSettings,
    data_dir,
    kinds,
    write_aimd,
    write_relax,
    write_static,
)
from .cp2k_outputs import (  # noqa: F401 - verbs of the engine (phonion.dft.ModuleEngine)
    INPUT,
    META_FILE,
    OUTPUT,
    PROJECT,
    VELOCITY_AU_A_PS,
    _meta_of,
    _xyz_frames,
    concatenate_segments,
    read_trajectory,
)

#: Written by :func:`continue_aimd`: which restart file the segment starts from.
SEGMENT_FILE = "phonion_segment.json"
#: The restart file a continuation segment reads (a copy of the previous segment's).
RESTART_IN = "previous.restart"

HARTREE_EV = units.Hartree
BOHR_A = units.Bohr
#: Hartree/Bohr → eV/Å.
FORCE_AU_EV_A = units.Hartree / units.Bohr


# --- data files ------------------------------------------------------------------------------


# --- inputs ----------------------------------------------------------------------------------


# --- running ---------------------------------------------------------------------------------

def run_argv(settings: Cp2kSettings, command: str | list[str] | None = None) -> list[str]:
    """The command (``settings.command`` unless given) as an argument list, with
    ``-i cp2k.inp -o cp2k.out`` appended."""
    return command_argv(command if command is not None else settings.command) + [
        "-i", INPUT, "-o", OUTPUT]


def start(directory: str | os.PathLike, settings: Cp2kSettings,
          command: str | list[str] | None = None, env: dict | None = None) -> subprocess.Popen:
    """Start CP2K in ``directory`` (no shell; stdout/stderr to ``cp2k.stdout``) and return
    the process. A previous ``cp2k.out`` is removed first: CP2K appends to it."""
    directory = Path(directory)
    argv = run_argv(settings, command)
    (directory / OUTPUT).unlink(missing_ok=True)
    log = open(directory / "cp2k.stdout", "w")  # noqa: SIM115 - closed when the child ends
    try:
        return subprocess.Popen(argv, cwd=directory, stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    except FileNotFoundError as exc:
        raise ConfigError(f"CP2K run command {argv[0]!r} not found ({exc.strerror}); set "
                          "dft.cp2k.command") from None
    finally:
        log.close()


def run(directory: str | os.PathLike, settings: Cp2kSettings,
        command: str | list[str] | None = None, env: dict | None = None,
        timeout_s: float | None = None) -> None:
    """Run CP2K in ``directory`` to its end, then :func:`check`; raises
    :class:`~phonion.dft.DFTRunFailed` with the reason when the run failed."""
    proc = start(directory, settings, command, env)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise DFTRunFailed(directory, f"CP2K still running after {timeout_s} s; killed") \
            from None
    ok, why = check(directory)
    if not ok:
        raise DFTRunFailed(directory, f"{why} (exit status {proc.returncode})")


# --- checks and parsers ----------------------------------------------------------------------


_ENERGY = re.compile(r"ENERGY\|\s+Total FORCE_EVAL \( \w+ \) energy \[a\.u\.\]:\s+(\S+)")


def check(directory: str | os.PathLike, settings: Cp2kSettings | None = None
          ) -> tuple[bool, str]:
    """``(True, '')`` when the CP2K run in ``directory`` ended and converged, else
    ``(False, one-line reason)``: no output, an ABORT, no ``PROGRAM ENDED`` (killed or cut
    by a wall-time limit), an SCF that did not converge (any step), a relaxation that did
    not converge, an MD run with fewer steps than asked for, or missing force / trajectory
    output."""
    directory = Path(directory)
    out = directory / OUTPUT
    if not out.is_file():
        return False, f"no {OUTPUT}: CP2K did not start (see cp2k.stdout)"
    text = out.read_text(errors="replace")
    if "ABORT" in text:
        m = re.search(r"\*\s+\[?ABORT\]?.*?\n((?:.*\n){0,6})", text)
        why = " ".join(re.sub(r"[*\\/|]", " ", m.group(1) if m else "").split())[:300]
        return False, f"CP2K aborted: {why or 'see ' + OUTPUT}"
    n_bad = text.count("SCF run NOT converged")
    if n_bad:
        return False, f"SCF not converged in {n_bad} step(s) (EPS_SCF / MAX_SCF)"
    if "PROGRAM ENDED AT" not in text:
        return False, f"{OUTPUT} has no 'PROGRAM ENDED': the run was killed or cut short"
    meta = _meta_of(directory)
    task = meta["task"]
    if task == "static":
        if not _ENERGY.search(text) or "ATOMIC FORCES in [a.u.]" not in text:
            return False, f"no energy or forces in {OUTPUT}"
    elif task == "relax":
        if "GEOMETRY OPTIMIZATION COMPLETED" not in text:
            return False, "relaxation did not converge within MAX_ITER"
    elif task == "aimd":
        pos = directory / f"{PROJECT}-pos-1.xyz"
        if not pos.is_file():
            return False, f"no {pos.name}"
        steps = _xyz_frames(pos).steps
        want = int(meta.get("last_step", meta["steps"]))
        if len(steps) == 0 or steps[-1] < want:
            last = steps[-1] if len(steps) else "none"
            return False, f"MD ended at step {last} of {want}"
    return True, ""


def read_forces(directory: str | os.PathLike) -> tuple[np.ndarray, float]:
    """Forces (eV/Å, atoms × 3, in the order of the input) and total energy (eV) of a
    checked static run; :class:`~phonion.dft.DFTRunFailed` with the reason otherwise."""
    directory = Path(directory)
    ok, why = check(directory)
    if not ok:
        raise DFTRunFailed(directory, why)
    text = (directory / OUTPUT).read_text(errors="replace")
    energy = float(_ENERGY.findall(text)[-1]) * HARTREE_EV
    block = text.rsplit("ATOMIC FORCES in [a.u.]", 1)[1].splitlines()
    rows = []
    for line in block[1:]:
        parts = line.split()
        if not parts or parts[0] == "#":
            continue
        if not parts[0].isdigit():
            break
        rows.append([float(x) for x in parts[3:6]])
    n = len(_meta_of(directory)["symbols"])
    if len(rows) != n:
        raise DFTRunFailed(directory, f"{len(rows)} force rows in {OUTPUT}, {n} atoms")
    return np.asarray(rows) * FORCE_AU_EV_A, energy


def _cells(directory: Path, meta: dict) -> dict[int, np.ndarray]:
    """Optimiser step → cell (Å) of ``phonion-1.cell`` (CELL_OPT); {} for GEO_OPT."""
    cfile = directory / f"{PROJECT}-1.cell"
    if meta["settings"].get("relax_cell") and not cfile.is_file():
        raise DFTRunFailed(directory, f"cell relaxation without {cfile.name}")
    out = {}
    if cfile.is_file():
        for ln in cfile.read_text().splitlines():
            row = ln.split()
            if len(row) >= 11 and not ln.lstrip().startswith("#"):
                out[int(row[0])] = np.asarray([float(v) for v in row[2:11]]).reshape(3, 3)
    return out


def read_relaxed(directory: str | os.PathLike) -> Atoms:
    """The relaxed structure of a checked relaxation: last frame of ``phonion-pos-1.xyz``
    with the last cell of ``phonion-1.cell`` (the input cell for GEO_OPT); the last total
    energy (eV) in ``info["energy_eV"]``."""
    directory = Path(directory)
    ok, why = check(directory)
    if not ok:
        raise DFTRunFailed(directory, why)
    meta = _meta_of(directory)
    x = _xyz_frames(directory / f"{PROJECT}-pos-1.xyz")
    cells = _cells(directory, meta)
    cell = cells[max(cells)] if cells else np.asarray(meta["cell_A"])
    atoms = Atoms(symbols=x.symbols, positions=x.xyz[-1], cell=cell, pbc=True)
    energies = _ENERGY.findall((directory / OUTPUT).read_text(errors="replace"))
    if energies:
        atoms.info["energy_eV"] = float(energies[-1]) * HARTREE_EV
    return atoms


_STEP_ENERGY = re.compile(r"i\s*=\s*(\d+),\s*E\s*=\s*([-\d.Ee+]+)")


def read_relax_path(directory: str | os.PathLike) -> dict:
    """Every optimiser step of a relaxation with its DFT forces: ``symbols``,
    ``positions_A`` (steps × atoms × 3), ``cells_A`` (steps × 3 × 3), ``forces_eV_A``,
    ``energies_eV`` (the total energy of that configuration) and ``steps``. CP2K prints
    positions, energy (xyz comment, Hartree), forces (``phonion-frc-1.xyz``, eV/Å) and,
    for CELL_OPT, the cell at every step; a static run on a step's positions and cell gives
    the same forces to 1e-5 eV/Å (tests/test_dft_cp2k.py). Steps without forces, energy or
    cell are left out; :class:`~phonion.errors.InputRejected` when none is left (a run
    written before the forces were printed)."""
    directory = Path(directory)
    meta = _meta_of(directory)
    pos_path, frc_path = (directory / f"{PROJECT}-{k}-1.xyz" for k in ("pos", "frc"))
    if not (pos_path.is_file() and frc_path.is_file()):
        raise InputRejected(directory, f"no {pos_path.name} and {frc_path.name}: the "
                            "relaxation printed no forces per step")
    pos, frc = _xyz_frames(pos_path), _xyz_frames(frc_path)
    energy = {int(m.group(1)): float(m.group(2)) * HARTREE_EV
              for m in _STEP_ENERGY.finditer(pos_path.read_text(errors="replace"))}
    cells = _cells(directory, meta)
    fixed = None if meta["settings"].get("relax_cell") else np.asarray(meta["cell_A"])
    steps = [int(k) for k in pos.steps if k in set(frc.steps.tolist()) and k in energy
             and (fixed is not None or k in cells)]
    if not steps:
        raise InputRejected(directory, "no relaxation step with positions, forces and "
                            "energy")
    ip, jf = np.searchsorted(pos.steps, steps), np.searchsorted(frc.steps, steps)
    return {"symbols": pos.symbols, "positions_A": pos.xyz[ip], "forces_eV_A": frc.xyz[jf],
            "cells_A": np.array([fixed if fixed is not None else cells[k] for k in steps]),
            "energies_eV": np.array([energy[k] for k in steps]), "steps": np.array(steps)}


# --- AIMD continuation -----------------------------------------------------------------------

_STEP_START = re.compile(r"^\s*STEP_START_VAL\s+(\d+)", re.MULTILINE)


def restart_step(path: str | os.PathLike) -> int:
    """The MD step a CP2K ``.restart`` file was written at (STEP_START_VAL)."""
    m = _STEP_START.search(Path(path).read_text(errors="replace"))
    if not m:
        raise InputRejected(path, "no STEP_START_VAL: not an MD restart file")
    return int(m.group(1))


def continue_aimd(previous: str | os.PathLike, directory: str | os.PathLike,
                  settings: Cp2kSettings, total_steps: int) -> dict | None:
    """Write the next segment of an AIMD run that stopped (wall time, node loss) before
    ``total_steps``, from the last restart file ``previous`` wrote
    (``phonion-1.restart``, every ``aimd_restart_every`` steps; copied into the new
    segment as ``previous.restart``).

    CP2K's EXT_RESTART restores positions, velocities, the Nosé–Hoover chain and the step
    counter, so the new segment's frames carry global step numbers, starting after the
    restart step, and it runs to ``total_steps``; the previous segment's frames after the
    restart step are recomputed and :func:`concatenate_segments` keeps the new ones. The
    new input asks for ``total_steps`` − the restart step. When
    The first SCF starts from the previous segment's last wavefunction
    (``phonion-RESTART.wfn``, a guess only). When
    ``previous`` stopped before its first restart file, the segment starts again from the
    beginning (same inputs, same seed). Returns the segment record, or None when
    ``previous`` already reached ``total_steps``."""
    previous, directory = Path(previous), Path(directory)
    meta = _meta_of(previous)
    if meta["task"] != "aimd":
        raise InputRejected(previous, "not an AIMD run")
    pos = previous / f"{PROJECT}-pos-1.xyz"
    done = _xyz_frames(pos).steps if pos.is_file() else np.zeros(0, int)
    if len(done) and done[-1] >= total_steps and check(previous)[0]:
        return None
    atoms = Atoms(symbols=meta["symbols"], positions=meta["positions_A"],
                  cell=meta["cell_A"], pbc=True)
    s = Cp2kSettings.from_json(json.dumps(meta["settings"])) if settings is None else settings
    directory.mkdir(parents=True, exist_ok=True)
    rfile = previous / f"{PROJECT}-1.restart"
    if rfile.is_file():
        shutil.copyfile(rfile, directory / RESTART_IN)
        step0 = restart_step(rfile)
        if step0 >= total_steps:
            raise InputRejected(rfile, f"restart file at step {step0}, at or past the "
                                f"{total_steps} steps asked for")
        wfn = previous / f"{PROJECT}-RESTART.wfn"
        write_aimd(atoms, directory, s, meta["temperature_K"], total_steps - step0,
                   restart_file=RESTART_IN, first_step=step0,
                   wfn_guess=wfn if wfn.is_file() else None)
    else:
        step0 = 0
        write_aimd(atoms, directory, s, meta["temperature_K"], total_steps)
    record = {"previous": os.path.relpath(previous.resolve(), directory.resolve()),
              "restart_step": step0, "total_steps": int(total_steps),
              "previous_last_step": int(done[-1]) if len(done) else None}
    (directory / SEGMENT_FILE).write_text(json.dumps(record, indent=1) + "\n")
    return record


__all__ = ["Cp2kSettings", "check", "concatenate_segments", "continue_aimd",
           "read_forces", "read_relaxed", "read_trajectory", "run", "start", "write_aimd",
           "write_relax", "write_static", "s_one_line"]
