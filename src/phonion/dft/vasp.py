"""VASP: inputs through pymatgen input sets, runs under custodian, and parsers of
vasprun.xml and XDATCAR into phonion's force and trajectory layouts (issue 14).

Verbs: :func:`write_static`, :func:`write_relax`, :func:`write_aimd` (inputs),
:func:`run` (VASP under custodian's error handlers, the command as an argument list),
:func:`check` (complete and converged, or a one-line reason), :func:`read_forces`,
:func:`read_trajectory`, :func:`continue_aimd` (the next segment of an AIMD run killed by
a wall-time limit, from its last complete ionic step) and :func:`concatenate_segments`
(one trajectory of all segments, every step once).

The protocol is seed 000's (§2.2, §2.6): PBE (pymatgen's ``PBE`` POTCAR set with the
Materials Project symbol choice), ENCUT 520 eV, EDIFF 1e-6 eV, AIMD in the NVT ensemble
with the Nosé–Hoover thermostat at 800 K, Γ point only, 1.5 fs. Every INCAR/KPOINTS choice
is a field of :class:`VaspSettings`; choices and their sources: ``docs/dft.md``.

pymatgen and custodian are imported inside the functions: importing this module (and
:class:`VaspSettings`) stays light.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from ase import Atoms

from ..errors import ConfigError, InputRejected
from .common import DFTRunFailed, command_argv, s_one_line
from .vasp_inputs import (  # noqa: F401 - verbs of the engine (phonion.dft.ModuleEngine)
    VaspSettings,
    input_set,
    psp_dir,
    species_order,
    write_aimd,
    write_relax,
    write_static,
)
from .vasp_outputs import (  # noqa: F401 - verbs of the engine (phonion.dft.ModuleEngine)
    ORDER_FILE,
    SEGMENT_FILE,
    VasprunScan,
    Xdatcar,
    _gamma_only,
    _incar,
    _segment,
    _xdatcar_path,
    concatenate_segments,
    read_trajectory,
    read_xdatcar,
    scan_vasprun,
)

# --- running ---------------------------------------------------------------------------------

def run(directory: str | os.PathLike, settings: VaspSettings,
        command: str | list[str] | None = None, poll_s: float = 10.0) -> None:
    """Run VASP in ``directory`` under custodian with its VaspErrorHandler (errors in
    vasp.out: ZBRENT, subspace rotation, …, corrected and rerun) and, except for AIMD,
    UnconvergedErrorHandler (unconverged SCF or ionic loop: ALGO/relaxation changes and a
    rerun), at most ``settings.max_errors`` corrections; then :func:`check`. The command
    (default ``settings.gamma_command`` for Γ-only KPOINTS, else ``settings.command``) is an
    argument list given to ``subprocess.Popen`` without a shell. Raises
    :class:`~phonion.dft.DFTRunFailed` with the reason when VASP cannot be brought to a
    converged, complete result."""
    from custodian import Custodian
    from custodian.custodian import CustodianError
    from custodian.vasp.handlers import UnconvergedErrorHandler, VaspErrorHandler
    from custodian.vasp.jobs import VaspJob

    directory = Path(directory).resolve()
    if command is None:
        command = settings.gamma_command if _gamma_only(directory) else settings.command
    argv = command_argv(command)
    # backup/auto_gamma off: they read POTCAR and pick binaries; phonion chose the command.
    job = VaspJob(argv, backup=False, auto_gamma=False, final=True)
    handlers = [VaspErrorHandler()]
    if int(_incar(directory).get("IBRION", -1)) != 0:
        # not for AIMD: it would parse a vasprun.xml of gigabytes with pymatgen and rerun a
        # whole trajectory for one unconverged last step; check() judges AIMD instead
        handlers.append(UnconvergedErrorHandler())
    cust = Custodian(handlers, [job],
                     max_errors=settings.max_errors, polling_time_step=poll_s,
                     monitor_freq=1, directory=str(directory))
    try:
        cust.run()
    except CustodianError as exc:
        raise DFTRunFailed(directory, f"custodian gave up: {s_one_line(exc)}") from None
    except FileNotFoundError as exc:
        raise ConfigError(f"VASP run command {argv[0]!r} not found ({exc.strerror}); set "
                          "dft.vasp.command / gamma_command") from None
    ok, why = check(directory, settings)
    if not ok:
        raise DFTRunFailed(directory, why)


# --- checking and parsing --------------------------------------------------------------------


# --- XDATCAR and trajectories ----------------------------------------------------------------


def check(directory: str | os.PathLike, settings: VaspSettings | None = None
          ) -> tuple[bool, str]:
    """``(True, '')`` when the VASP run in ``directory`` finished and converged, else
    ``(False, one-line reason)``: no or truncated vasprun.xml, SCF that hit NELM, a
    relaxation that used all NSW steps, an MD run with fewer steps than NSW (killed: see
    :func:`continue_aimd`) or with too many unconverged SCF steps."""
    directory = Path(directory)
    s = settings or VaspSettings()
    path = directory / "vasprun.xml"
    if not path.is_file():
        return False, "no vasprun.xml: VASP did not start or died before its first output " \
                      "(see vasp.out / std_err.txt)"
    scan = scan_vasprun(path)
    nelm = int(scan.parameters.get("NELM", 60))
    nsw = int(scan.parameters.get("NSW", 0))
    ibrion = int(scan.parameters.get("IBRION", -1 if nsw in (0, -1) else 0))
    n = len(scan.scf_steps)
    if not scan.complete:
        if ibrion == 0 and n:
            return False, (f"MD run cut after {n} of NSW {nsw} steps (vasprun.xml truncated: "
                           f"{scan.error}); continue it from its last complete step")
        return False, f"vasprun.xml truncated or unreadable after {n} ionic steps ({scan.error})"
    if n == 0:
        return False, "vasprun.xml holds no complete ionic step"
    if ibrion == 0:
        if n < nsw:
            return False, f"MD ionic loop cut: {n} of NSW {nsw} steps"
        bad = sum(k >= nelm for k in scan.scf_steps)
        if bad > s.aimd_max_unconverged_fraction * n:
            return False, (f"SCF hit NELM {nelm} in {bad} of {n} MD steps (more than "
                           f"dft.vasp.aimd_max_unconverged_fraction "
                           f"{s.aimd_max_unconverged_fraction})")
        return True, ""
    from pymatgen.io.vasp import Vasprun

    try:
        v = Vasprun(path, parse_potcar_file=False, parse_dos=False, parse_eigen=False,
                    parse_projected_eigen=False)
    except Exception as exc:  # noqa: BLE001 - pymatgen raises anything on a bad file
        return False, f"vasprun.xml not parseable ({s_one_line(exc)})"
    if not v.converged_electronic:
        k = len(v.ionic_steps[-1]["electronic_steps"])
        return False, (f"electronic SCF not converged: {k} steps reached NELM "
                       f"{v.parameters.get('NELM')} in ionic step {len(v.ionic_steps)} "
                       f"(EDIFF {v.parameters.get('EDIFF')})")
    if ibrion in (1, 2, 3) and not v.converged_ionic:
        return False, (f"relaxation not converged: all NSW {nsw} ionic steps used "
                       f"(EDIFFG {v.parameters.get('EDIFFG')}); continue from CONTCAR")
    forces = np.asarray(v.ionic_steps[-1].get("forces", []), float)
    if forces.ndim != 2 or not np.isfinite(forces).all():
        return False, "no finite forces in the last ionic step"
    return True, ""


def read_forces(directory: str | os.PathLike) -> tuple[np.ndarray, float]:
    """Forces (eV/Å, atoms × 3, in POSCAR order) and free energy (e_fr_energy, eV, the
    energy the forces derive from) of the last ionic step of a checked run;
    :class:`~phonion.dft.DFTRunFailed` with the reason when the run failed."""
    from pymatgen.io.vasp import Vasprun

    ok, why = check(directory)
    if not ok:
        raise DFTRunFailed(directory, why)
    v = Vasprun(Path(directory) / "vasprun.xml", parse_potcar_file=False, parse_dos=False,
                parse_eigen=False, parse_projected_eigen=False)
    step = v.ionic_steps[-1]
    forces = np.asarray(step["forces"], float)
    order_file = Path(directory) / ORDER_FILE
    if order_file.is_file():  # back to the order of the atoms phonion wrote
        order = np.asarray(json.loads(order_file.read_text())["poscar_to_input"])
        if sorted(order.tolist()) != list(range(len(forces))):
            raise DFTRunFailed(directory, f"{ORDER_FILE} does not match the {len(forces)} "
                               "atoms of vasprun.xml")
        out = np.empty_like(forces)
        out[order] = forces
        forces = out
    return forces, float(step["e_fr_energy"])


def read_relaxed(directory: str | os.PathLike) -> Atoms:
    """The relaxed structure of a checked relaxation (vasprun.xml's final structure), atoms
    back in the order phonion wrote them (:data:`ORDER_FILE`), the last free energy (eV) in
    ``info["energy_eV"]``; :class:`~phonion.dft.DFTRunFailed` with the reason otherwise."""
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.io.vasp import Vasprun

    ok, why = check(directory)
    if not ok:
        raise DFTRunFailed(directory, why)
    v = Vasprun(Path(directory) / "vasprun.xml", parse_potcar_file=False, parse_dos=False,
                parse_eigen=False, parse_projected_eigen=False)
    final = AseAtomsAdaptor.get_atoms(v.final_structure)
    atoms = Atoms(final.get_chemical_symbols(), cell=final.cell.array,
                  scaled_positions=final.get_scaled_positions(), pbc=True)
    order_file = Path(directory) / ORDER_FILE
    if order_file.is_file():
        order = np.asarray(json.loads(order_file.read_text())["poscar_to_input"])
        if sorted(order.tolist()) != list(range(len(atoms))):
            raise DFTRunFailed(directory, f"{ORDER_FILE} does not match the {len(atoms)} "
                               "atoms of vasprun.xml")
        atoms = atoms[np.argsort(order)]
    atoms.info["energy_eV"] = float(v.ionic_steps[-1]["e_fr_energy"])
    return atoms


def read_relax_path(directory: str | os.PathLike) -> dict:
    """Every ionic step of a VASP relaxation with its DFT forces (vasprun.xml: structure,
    forces and free energy e_fr_energy of each step), atoms back in the order phonion wrote
    them: ``symbols``, ``positions_A``, ``cells_A``, ``forces_eV_A``, ``energies_eV``,
    ``steps`` (1-based ionic step). Steps without forces are left out;
    :class:`~phonion.errors.InputRejected` when none is left or vasprun.xml is unreadable."""
    from pymatgen.io.vasp import Vasprun

    path = Path(directory) / "vasprun.xml"
    try:
        v = Vasprun(path, parse_potcar_file=False, parse_dos=False, parse_eigen=False,
                    parse_projected_eigen=False)
    except Exception as exc:  # noqa: BLE001 - pymatgen raises anything on a bad file
        raise InputRejected(path, f"vasprun.xml not parseable ({s_one_line(exc)})") from None
    order_file = Path(directory) / ORDER_FILE
    order = (np.asarray(json.loads(order_file.read_text())["poscar_to_input"])
             if order_file.is_file() else None)
    keep = [k for k, st in enumerate(v.ionic_steps)
            if np.asarray(st.get("forces", []), float).ndim == 2]
    if not keep:
        raise InputRejected(path, "no ionic step with forces")
    steps = [v.ionic_steps[k] for k in keep]
    pos = np.array([st["structure"].cart_coords for st in steps])
    frc = np.array([st["forces"] for st in steps], float)
    symbols = [sp.symbol for sp in steps[0]["structure"].species]
    if order is not None:  # input atom i is POSCAR atom argsort(order)[i]
        if sorted(order.tolist()) != list(range(pos.shape[1])):
            raise InputRejected(path, f"{ORDER_FILE} does not match the {pos.shape[1]} "
                                "atoms of vasprun.xml")
        back = np.argsort(order)
        pos, frc, symbols = pos[:, back], frc[:, back], [symbols[i] for i in back]
    return {"symbols": symbols, "positions_A": pos, "forces_eV_A": frc,
            "cells_A": np.array([st["structure"].lattice.matrix for st in steps]),
            "energies_eV": np.array([float(st["e_fr_energy"]) for st in steps]),
            "steps": np.array(keep) + 1}


# --- AIMD continuation -----------------------------------------------------------------------

def continue_aimd(previous: str | os.PathLike, directory: str | os.PathLike,
                  settings: VaspSettings, total_steps: int, potcar_spec: bool = False
                  ) -> dict | None:
    """Write the next segment of an AIMD run that stopped (wall time, node loss) before
    ``total_steps``, from the last complete frame of ``previous``'s XDATCAR.

    The new POSCAR holds that frame's positions and velocities from a second-order
    backward difference of the last three complete frames (exact to O(POTIM²); needs
    NBLOCK = 1, phonion's default, since frames further apart give no velocity — refused
    otherwise); INCAR asks for the remaining steps. VASP's first step of the new segment
    recomputes the restart frame, so the segment starts at that global step
    (``first_step`` in :data:`SEGMENT_FILE`) and :func:`concatenate_segments` keeps every
    step once. A killed run's CONTCAR is not used: it carries no step number and may be
    ahead of the (buffered) XDATCAR. The Nosé thermostat variable restarts at zero.
    Returns the segment record, or None when ``previous`` already reached ``total_steps``."""
    previous, directory = Path(previous), Path(directory)
    incar = _incar(previous)
    nblock = int(incar.get("NBLOCK", 1))
    if nblock != 1:
        raise ConfigError(f"{previous}: NBLOCK {nblock}; continuing an AIMD run needs a frame "
                          "every step (dft.vasp.aimd_nblock 1) for its velocities")
    if "POTIM" not in incar or "TEBEG" not in incar:
        raise InputRejected(previous / "INCAR", "no POTIM/TEBEG: not an AIMD run")
    x = read_xdatcar(_xdatcar_path(previous))
    if not (np.diff(x.steps) == 1).all() or x.steps[0] != 1:
        raise InputRejected(previous, f"XDATCAR steps {x.steps[0]}…{x.steps[-1]} are not "
                            "1, 2, 3, … (NBLOCK 1)")
    first = int(_segment(previous)["first_step"])
    last_global = first + int(x.steps[-1]) - 1
    if last_global >= total_steps:
        return None
    potim = float(incar["POTIM"])
    from ..geometry import unwrap

    pos = unwrap(x.frac[-3:], x.cells_A[-1])
    if len(pos) >= 3:
        vel = (3 * pos[-1] - 4 * pos[-2] + pos[-3]) / (2 * potim)
    elif len(pos) == 2:
        vel = (pos[-1] - pos[-2]) / potim
    else:
        vel = None  # one frame: VASP draws velocities at TEBEG
    atoms = Atoms(symbols=x.symbols, cell=x.cells_A[-1], scaled_positions=x.frac[-1] % 1.0,
                  pbc=True)
    steps = total_steps - last_global + 1
    write_aimd(atoms, directory, settings, float(incar["TEBEG"]), steps,
               potcar_spec=potcar_spec, velocities_A_fs=vel)
    record = {"previous": os.path.relpath(previous.resolve(), directory.resolve()),
              "first_step": last_global, "restart_frame_index": len(x.steps) - 1,
              "total_steps": int(total_steps),
              "previous_truncated": bool(x.truncated),
              "velocities": "backward difference of frames" if vel is not None else "none"}
    (directory / SEGMENT_FILE).write_text(json.dumps(record, indent=1) + "\n")
    return record


