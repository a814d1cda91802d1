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
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from ase import Atoms, units

from ..errors import ConfigError, InputRejected
from ..settings_base import Settings, config_field
from .common import DFTRunFailed, command_argv, s_one_line, stitch, trajectory_record

#: The input phonion writes, the output CP2K writes, and CP2K's PROJECT name.
INPUT = "cp2k.inp"
OUTPUT = "cp2k.out"
PROJECT = "phonion"
#: Written with every input: task, atoms, cell and MD parameters of the run.
META_FILE = "phonion_cp2k.json"
#: Written by :func:`continue_aimd`: which restart file the segment starts from.
SEGMENT_FILE = "phonion_segment.json"
#: The restart file a continuation segment reads (a copy of the previous segment's).
RESTART_IN = "previous.restart"

HARTREE_EV = units.Hartree
BOHR_A = units.Bohr
#: Hartree/Bohr → eV/Å.
FORCE_AU_EV_A = units.Hartree / units.Bohr
#: Bohr per atomic time unit → Å/ps (atomic time unit ħ/E_h = ase.units._aut seconds).
VELOCITY_AU_A_PS = units.Bohr / (units._aut * 1e12)


@dataclass(frozen=True)
class Cp2kSettings(Settings):
    """CP2K protocol (config ``dft.cp2k``). Defaults and their sources: ``docs/dft.md``."""

    SECTION: ClassVar[str] = "dft.cp2k"
    #: CP2K data directory ("" : $CP2K_DATA_DIR, then Debian's /usr/share/cp2k/data and
    #: /usr/share/cp2k).
    data_dir: str = config_field("dft.cp2k.data_dir", "")
    basis_set_file: str = config_field("dft.cp2k.basis_set_file", "BASIS_MOLOPT")
    potential_file: str = config_field("dft.cp2k.potential_file", "GTH_POTENTIALS")
    #: MOLOPT short-range double-ζ + polarisation: CP2K's standard basis for condensed
    #: phases (VandeVondele & Hutter, JCP 127, 114105 (2007)).
    basis_set: str = config_field("dft.cp2k.basis_set", "DZVP-MOLOPT-SR-GTH")
    #: GTH potential alias per element (GTH-PBE: Goedecker–Teter–Hutter for PBE; Na is
    #: q9, with 2s2p semicore, the only PBE Na entry the file ships).
    potential: str = config_field("dft.cp2k.potential", "GTH-PBE")
    #: element → basis / potential name replacing the two above for that element.
    basis_sets: dict = config_field("dft.cp2k.basis_sets", {})
    potentials: dict = config_field("dft.cp2k.potentials", {})
    xc_functional: str = config_field("dft.cp2k.xc_functional", "PBE")  # seed 000: PBE
    #: Quickstep method. GAPW, not GPW: Na's GTH-PBE-q9 core (r_loc 0.23 Bohr) is too
    #: hard for a plane-wave grid; with GPW, 8-atom NaCl with one Na moved by 0.02 Å gave
    #: a 15 eV/Å force at 250 Ry and forces summing to 0.1–0.7 eV/Å up to 800 Ry (measured
    #: here, CP2K 2023.1). GAPW puts the hard atomic densities on atom-centred grids: the
    #: same cell gave −0.036 eV/Å, summing to 0.001 eV/Å, at 250 Ry (docs/dft.md).
    qs_method: str = config_field("dft.cp2k.qs_method", "GAPW")
    #: plane-wave cutoff of the finest density grid (Ry) and the Gaussian-to-grid mapping
    #: cutoff: 400/50 is the usual converged choice for MOLOPT + GTH with semicore states
    #: (CP2K's "converging the cutoff" how-to; the tests use a far lower one).
    cutoff_Ry: float = config_field("dft.cp2k.cutoff_Ry", 400.0)
    rel_cutoff_Ry: float = config_field("dft.cp2k.rel_cutoff_Ry", 50.0)
    #: SCF convergence on the largest element of the gradient (CP2K's EPS_SCF; its
    #: default 1e-5 is loosened to 1e-6 for forces good to ~1 meV/Å).
    eps_scf: float = config_field("dft.cp2k.eps_scf", 1e-6)
    max_scf: int = config_field("dft.cp2k.max_scf", 50)  # inner OT steps per outer step
    outer_max_scf: int = config_field("dft.cp2k.outer_max_scf", 10)
    #: OT minimiser and preconditioner: DIIS with FULL_ALL, CP2K's recommendation for
    #: insulators with a gap (reference manual, OT section).
    ot_minimizer: str = config_field("dft.cp2k.ot_minimizer", "DIIS")
    ot_preconditioner: str = config_field("dft.cp2k.ot_preconditioner", "FULL_ALL")
    eps_default: float = config_field("dft.cp2k.eps_default", 1e-12)  # CP2K default 1e-10
    #: relaxation: positions and cell (CELL_OPT) or positions only (GEO_OPT), CP2K's BFGS
    #: with its default force threshold 4.5e-4 Hartree/Bohr (≈ 0.023 eV/Å).
    relax_cell: bool = config_field("dft.cp2k.relax_cell", True)
    relax_max_iter: int = config_field("dft.cp2k.relax_max_iter", 200)
    relax_max_force_au: float = config_field("dft.cp2k.relax_max_force_au", 4.5e-4)
    #: MD time step: seed 000 §2.6 (1.5 fs).
    aimd_timestep_fs: float = config_field("dft.cp2k.aimd_timestep_fs", 1.5)
    #: Nosé–Hoover chain length (CP2K default 3) and time constant (100 fs: couples within
    #: a few hundred steps; CP2K's default is 1000 fs).
    aimd_nose_length: int = config_field("dft.cp2k.aimd_nose_length", 3)
    aimd_nose_timecon_fs: float = config_field("dft.cp2k.aimd_nose_timecon_fs", 100.0)
    #: wavefunction extrapolation between MD steps (CP2K default ASPC, order 3).
    aimd_extrapolation: str = config_field("dft.cp2k.aimd_extrapolation", "ASPC")
    aimd_extrapolation_order: int = config_field("dft.cp2k.aimd_extrapolation_order", 3)
    #: restart file every this many MD steps (what a killed run continues from).
    aimd_restart_every: int = config_field("dft.cp2k.aimd_restart_every", 10)
    #: seed of CP2K's initial Maxwell–Boltzmann velocities (GLOBAL SEED).
    aimd_seed: int = config_field("dft.cp2k.aimd_seed", 2000)
    #: run command, split like a shell would (shlex) and run without one; phonion appends
    #: ``-i cp2k.inp -o cp2k.out``. E.g. ``srun cp2k.psmp``.
    command: str = config_field("dft.cp2k.command", "cp2k.psmp")

    def __post_init__(self):
        object.__setattr__(self, "basis_sets", dict(self.basis_sets))
        object.__setattr__(self, "potentials", dict(self.potentials))


# --- data files ------------------------------------------------------------------------------

def data_dir(settings: Cp2kSettings) -> Path:
    """The folder holding the basis and potential files."""
    candidates = [settings.data_dir] if settings.data_dir else [
        os.environ.get("CP2K_DATA_DIR", ""), "/usr/share/cp2k/data", "/usr/share/cp2k"]
    for c in candidates:
        if c and (Path(c) / settings.basis_set_file).is_file() \
                and (Path(c) / settings.potential_file).is_file():
            return Path(c)
    raise ConfigError(f"no CP2K data directory with {settings.basis_set_file} and "
                      f"{settings.potential_file} (looked in {[c for c in candidates if c]}); "
                      "install Debian's cp2k-data or set dft.cp2k.data_dir")


def _names_in(path: Path) -> dict[str, set[str]]:
    """element → names of the entries of a CP2K basis or potential file (aliases too)."""
    out: dict[str, set[str]] = {}
    head = re.compile(r"^\s*([A-Z][a-z]?)\s+([A-Za-z].*)$")
    for line in path.read_text(errors="replace").splitlines():
        m = head.match(line)
        if m:
            out.setdefault(m.group(1), set()).update(m.group(2).split())
    return out


def kinds(symbols: list[str], settings: Cp2kSettings) -> dict[str, tuple[str, str]]:
    """element → (basis set, potential), each checked to exist in the data files."""
    d = data_dir(settings)
    basis = _names_in(d / settings.basis_set_file)
    pots = _names_in(d / settings.potential_file)
    out = {}
    for el in dict.fromkeys(symbols):
        b = settings.basis_sets.get(el, settings.basis_set)
        p = settings.potentials.get(el, settings.potential)
        if b not in basis.get(el, ()):
            raise ConfigError(f"no basis set {b} for {el} in {d / settings.basis_set_file}; "
                              "set dft.cp2k.basis_sets")
        if p not in pots.get(el, ()):
            raise ConfigError(f"no potential {p} for {el} in {d / settings.potential_file}; "
                              "set dft.cp2k.potentials")
        out[el] = (b, p)
    return out


# --- inputs ----------------------------------------------------------------------------------

def _vec(v) -> str:
    return " ".join(f"{x:.10f}" for x in v)


#: The wavefunction a static run starts its SCF from (a copy of another run's).
WFN_GUESS = "guess.wfn"


def _force_eval(atoms: Atoms, s: Cp2kSettings, stress: bool = False,
                wfn_guess: bool = False) -> str:
    d = data_dir(s)
    symbols = atoms.get_chemical_symbols()
    cell = np.asarray(atoms.cell)
    if abs(np.linalg.det(cell)) < 1e-6 or not all(atoms.pbc):
        raise ConfigError("CP2K runs here are periodic: the atoms need a 3D cell and pbc")
    coord = "\n".join(f"      {el} {_vec(p)}" for el, p in zip(symbols, atoms.positions,
                                                               strict=True))
    kind = "\n".join(f"    &KIND {el}\n      BASIS_SET {b}\n      POTENTIAL {p}\n    &END KIND"
                     for el, (b, p) in kinds(symbols, s).items())
    return f"""&FORCE_EVAL
  METHOD Quickstep
{"  STRESS_TENSOR ANALYTICAL" if stress else ""}
  &DFT
    BASIS_SET_FILE_NAME {d / s.basis_set_file}
    POTENTIAL_FILE_NAME {d / s.potential_file}
{"    WFN_RESTART_FILE_NAME " + WFN_GUESS if wfn_guess else ""}
    &QS
      METHOD {s.qs_method}
      EPS_DEFAULT {s.eps_default:g}
      EXTRAPOLATION {s.aimd_extrapolation}
      EXTRAPOLATION_ORDER {s.aimd_extrapolation_order}
    &END QS
    &MGRID
      CUTOFF {s.cutoff_Ry:g}
      REL_CUTOFF {s.rel_cutoff_Ry:g}
    &END MGRID
    &SCF
      SCF_GUESS {"RESTART" if wfn_guess else "ATOMIC"}
      EPS_SCF {s.eps_scf:g}
      MAX_SCF {s.max_scf}
      &OT
        MINIMIZER {s.ot_minimizer}
        PRECONDITIONER {s.ot_preconditioner}
      &END OT
      &OUTER_SCF
        EPS_SCF {s.eps_scf:g}
        MAX_SCF {s.outer_max_scf}
      &END OUTER_SCF
    &END SCF
    &XC
      &XC_FUNCTIONAL {s.xc_functional}
      &END XC_FUNCTIONAL
    &END XC
  &END DFT
  &SUBSYS
    &CELL
      A {_vec(cell[0])}
      B {_vec(cell[1])}
      C {_vec(cell[2])}
      PERIODIC XYZ
    &END CELL
    &COORD
{coord}
    &END COORD
{kind}
  &END SUBSYS
  &PRINT
    &FORCES ON
    &END FORCES
{"    &STRESS_TENSOR ON" + chr(10) + "    &END STRESS_TENSOR" if stress else ""}
  &END PRINT
&END FORCE_EVAL
"""


def _global(run_type: str, s: Cp2kSettings) -> str:
    return f"""&GLOBAL
  PROJECT {PROJECT}
  RUN_TYPE {run_type}
  PRINT_LEVEL LOW
  SEED {s.aimd_seed}
&END GLOBAL
"""


def _meta(atoms: Atoms, task: str, s: Cp2kSettings, **extra) -> dict:
    return {"task": task, "symbols": atoms.get_chemical_symbols(),
            "cell_A": np.asarray(atoms.cell).tolist(), "positions_A": atoms.positions.tolist(),
            "settings": json.loads(s.to_json()), **extra}


def _write(directory: str | os.PathLike, text: str, meta: dict) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / INPUT).write_text(text)
    (directory / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")


def write_static(atoms: Atoms, directory: str | os.PathLike, settings: Cp2kSettings,
                 wfn_guess: str | os.PathLike | None = None) -> None:
    """``cp2k.inp`` of a single-point energy and forces run (RUN_TYPE ENERGY_FORCE, forces
    printed to the output), atoms in the order given. ``wfn_guess``: a converged
    wavefunction of the same atoms (e.g. the undisplaced supercell's
    ``phonion-RESTART.wfn``), copied in as the SCF's starting point (fewer SCF steps for
    displaced supercells; the converged result does not depend on it)."""
    _write(directory, _global("ENERGY_FORCE", settings)
           + _force_eval(atoms, settings, wfn_guess=wfn_guess is not None),
           _meta(atoms, "static", settings))
    if wfn_guess is not None:
        shutil.copyfile(wfn_guess, Path(directory) / WFN_GUESS)


def write_relax(atoms: Atoms, directory: str | os.PathLike, settings: Cp2kSettings) -> None:
    """``cp2k.inp`` of a BFGS relaxation of positions and (``relax_cell``) the cell."""
    s = settings
    geo = f"""  &GEO_OPT
    OPTIMIZER BFGS
    MAX_ITER {s.relax_max_iter}
    MAX_FORCE {s.relax_max_force_au:g}
  &END GEO_OPT
"""
    cell = f"""  &CELL_OPT
    OPTIMIZER BFGS
    MAX_ITER {s.relax_max_iter}
    MAX_FORCE {s.relax_max_force_au:g}
    TYPE DIRECT_CELL_OPT
  &END CELL_OPT
  &PRINT
    &CELL
      &EACH
        CELL_OPT 1
      &END EACH
    &END CELL
  &END PRINT
"""
    motion = "&MOTION\n" + (cell if s.relax_cell else geo) + "&END MOTION\n"
    _write(directory, _global("CELL_OPT" if s.relax_cell else "GEO_OPT", s)
           + _force_eval(atoms, s, stress=s.relax_cell) + motion, _meta(atoms, "relax", s))


def _aimd_motion(s: Cp2kSettings, temperature_K: float, steps: int) -> str:
    return f"""&MOTION
  &MD
    ENSEMBLE NVT
    STEPS {int(steps)}
    TIMESTEP {s.aimd_timestep_fs:g}
    TEMPERATURE {float(temperature_K):g}
    &THERMOSTAT
      TYPE NOSE
      REGION GLOBAL
      &NOSE
        LENGTH {s.aimd_nose_length}
        TIMECON {s.aimd_nose_timecon_fs:g}
      &END NOSE
    &END THERMOSTAT
  &END MD
  &PRINT
    &TRAJECTORY
      FORMAT XYZ
      UNIT angstrom
      &EACH
        MD 1
      &END EACH
    &END TRAJECTORY
    &VELOCITIES
      FORMAT XYZ
      UNIT bohr*au_t^-1
      &EACH
        MD 1
      &END EACH
    &END VELOCITIES
    &RESTART
      BACKUP_COPIES 0
      &EACH
        MD {s.aimd_restart_every}
      &END EACH
    &END RESTART
    &RESTART_HISTORY OFF
    &END RESTART_HISTORY
  &END PRINT
&END MOTION
"""


def write_aimd(atoms: Atoms, directory: str | os.PathLike, settings: Cp2kSettings,
               temperature_K: float, steps: int, restart_file: str | None = None,
               first_step: int = 0, wfn_guess: str | os.PathLike | None = None) -> None:
    """``cp2k.inp`` of an NVT (Nosé–Hoover chain) AIMD run of ``steps`` MD steps at
    ``temperature_K``; positions and velocities printed every step, a restart file every
    ``aimd_restart_every`` steps. CP2K draws the initial velocities at ``temperature_K``
    (seed ``aimd_seed``). With ``restart_file`` (a name in ``directory``) the run continues
    from it through EXT_RESTART: positions, velocities, thermostat and step counter
    (``first_step``, the restart file's STEP_START_VAL); CP2K then runs ``steps`` more
    steps (measured with CP2K 2023.1: STEPS counts the steps of this run, not the total),
    so the run ends at global step ``first_step + steps``. ``wfn_guess``: a wavefunction
    of the same atoms to start the first SCF from (as in :func:`write_static`)."""
    if not temperature_K > 0 or steps < 1:
        raise ConfigError(f"AIMD needs a positive temperature and steps (got "
                          f"{temperature_K} K, {steps} steps)")
    ext = ""
    if restart_file:
        ext = f"""&EXT_RESTART
  RESTART_FILE_NAME {restart_file}
  RESTART_DEFAULT F
  RESTART_POS T
  RESTART_VEL T
  RESTART_COUNTERS T
  RESTART_THERMOSTAT T
&END EXT_RESTART
"""
    _write(directory, _global("MD", settings) + ext
           + _force_eval(atoms, settings, wfn_guess=wfn_guess is not None)
           + _aimd_motion(settings, temperature_K, steps),
           _meta(atoms, "aimd", settings, temperature_K=float(temperature_K),
                 steps=int(steps), first_step=int(first_step),
                 last_step=int(first_step) + int(steps),
                 timestep_fs=settings.aimd_timestep_fs))
    if wfn_guess is not None:
        shutil.copyfile(wfn_guess, Path(directory) / WFN_GUESS)


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

def _meta_of(directory: Path) -> dict:
    p = directory / META_FILE
    if not p.is_file():
        raise InputRejected(directory, f"no {META_FILE}: not a run phonion wrote")
    return json.loads(p.read_text())


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
    cell = np.asarray(meta["cell_A"])
    cfile = directory / f"{PROJECT}-1.cell"
    if meta["settings"].get("relax_cell") and not cfile.is_file():
        raise DFTRunFailed(directory, f"cell relaxation without {cfile.name}")
    if cfile.is_file():
        rows = [ln.split() for ln in cfile.read_text().splitlines()
                if ln.strip() and not ln.lstrip().startswith("#")]
        cell = np.asarray([float(v) for v in rows[-1][2:11]]).reshape(3, 3)
    atoms = Atoms(symbols=x.symbols, positions=x.xyz[-1], cell=cell, pbc=True)
    energies = _ENERGY.findall((directory / OUTPUT).read_text(errors="replace"))
    if energies:
        atoms.info["energy_eV"] = float(energies[-1]) * HARTREE_EV
    return atoms


@dataclass
class XyzFrames:
    """Complete frames of a CP2K MD xyz file (positions Å or velocities a.u.)."""

    symbols: list[str]
    xyz: np.ndarray  # frames × atoms × 3
    steps: np.ndarray  # MD step of each frame ('i =' of the comment line)
    times_fs: np.ndarray
    truncated: bool


_FRAME = re.compile(r"i\s*=\s*(\d+)(?:,\s*time\s*=\s*([-\d.Ee+]+))?")


def _xyz_frames(path: Path) -> XyzFrames:
    """Every complete frame of a CP2K xyz trajectory; a frame cut by a kill (missing
    lines, a last line without newline) is left out and ``truncated`` set."""
    text = path.read_text(errors="replace")
    lines = text.split("\n")
    truncated = bool(lines and lines[-1].strip())
    if truncated:
        lines = lines[:-1]
    symbols: list[str] | None = None
    frames, steps, times = [], [], []
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            n = int(lines[i].split()[0])
        except ValueError:
            raise InputRejected(path, f"no atom count at line {i + 1}") from None
        m = _FRAME.search(lines[i + 1]) if i + 1 < len(lines) else None
        block = lines[i + 2:i + 2 + n]
        if m is None or len(block) < n:
            truncated = True
            break
        try:
            sym = [ln.split()[0] for ln in block]
            xyz = np.array([[float(v) for v in ln.split()[1:4]] for ln in block])
        except (ValueError, IndexError):
            truncated = True
            break
        if xyz.shape != (n, 3):
            truncated = True
            break
        if symbols is None:
            symbols = sym
        elif sym != symbols:
            raise InputRejected(path, f"the atoms change at step {m.group(1)}")
        frames.append(xyz)
        steps.append(int(m.group(1)))
        times.append(float(m.group(2)) if m.group(2) else np.nan)  # GEO_OPT: no time
        i += 2 + n
    if symbols is None:
        return XyzFrames([], np.zeros((0, 0, 3)), np.zeros(0, int), np.zeros(0), truncated)
    return XyzFrames(symbols, np.array(frames), np.array(steps), np.array(times), truncated)


def _ener(directory: Path) -> dict[int, tuple[float, float]]:
    """MD step → (temperature K, potential energy eV) from ``phonion-1.ener``."""
    p = directory / f"{PROJECT}-1.ener"
    out = {}
    if p.is_file():
        for line in p.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) < 7 or line.lstrip().startswith("#"):
                continue
            try:
                out[int(parts[0])] = (float(parts[3]), float(parts[4]) * HARTREE_EV)
            except ValueError:
                continue
    return out


def _segment_frames(directory: Path):
    """(symbols, steps, positions Å, velocities Å/ps, temperatures K, energies eV) of the
    frames a segment holds both positions and velocities of."""
    pos = _xyz_frames(directory / f"{PROJECT}-pos-1.xyz")
    vel = _xyz_frames(directory / f"{PROJECT}-vel-1.xyz")
    if not len(pos.steps):
        raise InputRejected(directory, f"no complete frame in {PROJECT}-pos-1.xyz")
    common = np.intersect1d(pos.steps, vel.steps)
    ip = np.searchsorted(pos.steps, common)
    iv = np.searchsorted(vel.steps, common)
    ener = _ener(directory)
    temps = np.array([ener.get(int(k), (np.nan, np.nan))[0] for k in common])
    epot = np.array([ener.get(int(k), (np.nan, np.nan))[1] for k in common])
    return (pos.symbols, common, pos.xyz[ip], vel.xyz[iv] * VELOCITY_AU_A_PS, temps, epot)


def _trajectory(symbols, cell, steps, pos_A, vel_A_ps, temps, epot, dt_fs, target) -> dict:
    """CP2K frames (Cartesian positions, velocities, per-frame temperature and energy) as a
    trajectory; the frame interval is the smallest step difference."""
    cell = np.asarray(cell, float)
    frac = np.linalg.solve(cell.T, pos_A.reshape(-1, 3).T).T.reshape(pos_A.shape)
    steps = np.asarray(steps, int)
    interval = int(np.min(np.diff(steps))) if len(steps) > 1 else 1
    return trajectory_record(symbols, cell, frac, steps, float(dt_fs), interval, target,
                             velocities_A_ps=vel_A_ps, temperatures_K=temps,
                             energies_eV=epot if np.isfinite(epot).all() else None)


def read_trajectory(directory: str | os.PathLike, temperature_K: float | None = None) -> dict:
    """The AIMD trajectory of one run directory in the layout of
    :func:`phonion.formats.read_trajectory`: complete frames holding both positions
    (``phonion-pos-1.xyz``, Å, unwrapped with :func:`phonion.geometry.unwrap`) and
    velocities (``phonion-vel-1.xyz``, Bohr/a.u. of time → Å/ps), the instantaneous
    temperature and potential energy per frame from ``phonion-1.ener``, ``frame_dt_ps``
    from the time step. A run that did not finish is read as far as it got (use
    :func:`check` first to refuse it)."""
    d = Path(directory)
    meta = _meta_of(d)
    symbols, steps, pos, vel, temps, epot = _segment_frames(d)
    target = temperature_K if temperature_K is not None else meta.get("temperature_K")
    return _trajectory(symbols, meta["cell_A"], steps, pos, vel, temps, epot,
                       meta["timestep_fs"], target)


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


def concatenate_segments(directories: list[str | os.PathLike],
                         temperature_K: float | None = None) -> dict:
    """One trajectory from the segments of an AIMD run (in order), in the layout of
    :func:`read_trajectory`: each segment's frames at their (global) CP2K step numbers; a
    segment's frames at or after the next segment's first frame are replaced by the next
    segment's (it recomputed them). Refused when a step is missing or the atoms differ."""
    segs = [(Path(d), _segment_frames(Path(d))) for d in directories]
    meta = _meta_of(segs[0][0])
    symbols = segs[0][1][0]
    for d, (sym, *_) in segs:
        if sym != symbols:
            raise InputRejected(d, "other atoms than the first segment")
    keep = stitch(directories, [f[1] for _, f in segs], 1)
    steps, pos, vel, temps, epot = (
        np.concatenate([f[i][m] for (_, f), m in zip(segs, keep, strict=True)])
        for i in range(1, 6))
    target = temperature_K if temperature_K is not None else meta.get("temperature_K")
    out = _trajectory(symbols, meta["cell_A"], steps, pos, vel, temps, epot,
                      meta["timestep_fs"], target)
    out["segments"] = [os.fspath(d) for d, _ in segs]
    return out


__all__ = ["Cp2kSettings", "check", "concatenate_segments", "continue_aimd",
           "read_forces", "read_relaxed", "read_trajectory", "run", "start", "write_aimd",
           "write_relax", "write_static", "s_one_line"]
