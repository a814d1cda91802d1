"""CP2K inputs: the protocol (:class:`Cp2kSettings`; sources in ``docs/dft.md``) and the
Quickstep inputs of static, relaxation and AIMD runs (:mod:`phonion.dft.cp2k` re-exports
the verbs)."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from ase import Atoms

from ..errors import ConfigError
from ..settings_base import Settings, config_field
from .cp2k_outputs import INPUT, META_FILE, PROJECT


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
"""
    # every optimiser step's positions (default), forces and cell: the relaxation path with
    # its DFT forces is training data for the fine-tuning (phonion.dft.cp2k.read_relax_path)
    task = "CELL_OPT" if s.relax_cell else "GEO_OPT"
    cell_print = """    &CELL
      &EACH
        CELL_OPT 1
      &END EACH
    &END CELL
""" if s.relax_cell else ""
    prints = f"""  &PRINT
    &FORCES
      FORMAT XYZ
      UNIT eV*angstrom^-1
      &EACH
        {task} 1
      &END EACH
    &END FORCES
{cell_print}  &END PRINT
"""
    motion = "&MOTION\n" + (cell if s.relax_cell else geo) + prints + "&END MOTION\n"
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
    &FORCES
      FORMAT XYZ
      UNIT eV*angstrom^-1
      &EACH
        MD 1
      &END EACH
    &END FORCES
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
