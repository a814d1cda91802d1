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

import gzip
import json
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from ase import Atoms

from ..errors import ConfigError, InputRejected
from ..settings_base import Settings, config_field
from .common import DFTRunFailed, command_argv, s_one_line, stitch, trajectory_record

#: Written by :func:`continue_aimd` into a continuation segment: where it starts.
SEGMENT_FILE = "phonion_segment.json"
#: Written with every input set: which input atom each POSCAR atom is.
ORDER_FILE = "phonion_order.json"


@dataclass(frozen=True)
class VaspSettings(Settings):
    """VASP protocol (config ``dft.vasp``). Defaults: seed 000 where it says (ENCUT, EDIFF,
    Γ point, NVT Nosé–Hoover, 1.5 fs), pymatgen's Materials Project sets elsewhere
    (``docs/dft.md`` lists each with its source)."""

    SECTION: ClassVar[str] = "dft.vasp"
    potcar_functional: str = config_field("dft.vasp.potcar_functional", "PBE")
    #: element → POTCAR symbol, replacing the MP choice for that element (e.g. {"Na": "Na"}).
    potcar_symbols: dict = config_field("dft.vasp.potcar_symbols", {})
    encut_eV: float = config_field("dft.vasp.encut_eV", 520.0)
    ediff_eV: float = config_field("dft.vasp.ediff_eV", 1e-6)
    prec: str = config_field("dft.vasp.prec", "Accurate")
    ismear: int = config_field("dft.vasp.ismear", 0)
    sigma_eV: float = config_field("dft.vasp.sigma_eV", 0.05)
    spin_polarized: bool = config_field("dft.vasp.spin_polarized", False)
    lreal: str = config_field("dft.vasp.lreal", "False")  # "False" | "Auto" | "True"
    addgrid: bool = config_field("dft.vasp.addgrid", True)
    nelm: int = config_field("dft.vasp.nelm", 100)
    #: k-points of static and relax runs: pymatgen's reciprocal density (per Å⁻³).
    reciprocal_density: int = config_field("dft.vasp.reciprocal_density", 100)
    static_isym: int = config_field("dft.vasp.static_isym", 0)
    relax_ibrion: int = config_field("dft.vasp.relax_ibrion", 2)
    relax_isif: int = config_field("dft.vasp.relax_isif", 3)
    relax_nsw: int = config_field("dft.vasp.relax_nsw", 99)
    relax_ediffg_eV_A: float = config_field("dft.vasp.relax_ediffg_eV_A", -0.01)
    aimd_potim_fs: float = config_field("dft.vasp.aimd_potim_fs", 1.5)
    aimd_mdalgo: int = config_field("dft.vasp.aimd_mdalgo", 2)  # 2: Nosé–Hoover (0 also, legacy)
    aimd_smass: float = config_field("dft.vasp.aimd_smass", 0.0)
    aimd_isif: int = config_field("dft.vasp.aimd_isif", 2)
    aimd_nblock: int = config_field("dft.vasp.aimd_nblock", 1)
    aimd_prec: str = config_field("dft.vasp.aimd_prec", "Normal")
    aimd_lreal: str = config_field("dft.vasp.aimd_lreal", "Auto")
    aimd_nelmin: int = config_field("dft.vasp.aimd_nelmin", 4)
    #: MD steps whose SCF hit NELM, as a fraction of all steps, above which a run fails.
    aimd_max_unconverged_fraction: float = config_field(
        "dft.vasp.aimd_max_unconverged_fraction", 0.001)
    #: run commands, split like a shell would (shlex) and run without one.
    command: str = config_field("dft.vasp.command", "srun vasp_std")
    gamma_command: str = config_field("dft.vasp.gamma_command", "srun vasp_gam")
    max_errors: int = config_field("dft.vasp.max_errors", 5)

    def __post_init__(self):
        object.__setattr__(self, "potcar_symbols", dict(self.potcar_symbols))


def _lreal(value: str) -> bool | str:
    low = str(value).strip().lower().strip(".")
    if low in ("false", "f"):
        return False
    if low in ("true", "t"):
        return True
    if low in ("auto", "a"):
        return "Auto"
    raise ConfigError(f"dft.vasp LREAL '{value}' is none of False, True, Auto")


def _common_incar(s: VaspSettings) -> dict:
    return {
        "ENCUT": s.encut_eV, "EDIFF": s.ediff_eV, "EDIFF_PER_ATOM": None, "PREC": s.prec,
        "ISMEAR": s.ismear, "SIGMA": s.sigma_eV, "ISPIN": 2 if s.spin_polarized else 1,
        "LREAL": _lreal(s.lreal), "ADDGRID": s.addgrid, "NELM": s.nelm,
        "LWAVE": False, "LCHARG": False, "LORBIT": None, "LAECHG": None, "LVHAR": None,
        "LELF": None,
        **({} if s.spin_polarized else {"MAGMOM": None}),
    }


def static_incar(s: VaspSettings) -> dict:
    """INCAR updates of a static forces run (on top of pymatgen's MPStaticSet)."""
    return {**_common_incar(s), "IBRION": -1, "NSW": 0, "ISYM": s.static_isym}


def relax_incar(s: VaspSettings) -> dict:
    """INCAR updates of a relaxation (on top of pymatgen's MPRelaxSet)."""
    return {**_common_incar(s), "IBRION": s.relax_ibrion, "ISIF": s.relax_isif,
            "NSW": s.relax_nsw, "EDIFFG": s.relax_ediffg_eV_A}


def aimd_incar(s: VaspSettings, temperature_K: float, steps: int) -> dict:
    """INCAR updates of an NVT Nosé–Hoover AIMD run (on top of pymatgen's MPMDSet)."""
    if not temperature_K > 0 or steps < 1:
        raise ConfigError(f"AIMD needs a positive temperature and steps (got "
                          f"{temperature_K} K, {steps} steps)")
    if s.aimd_isif >= 3:
        raise ConfigError(f"dft.vasp.aimd_isif {s.aimd_isif} changes the cell; NVT needs "
                          "ISIF < 3")
    return {**_common_incar(s), "PREC": s.aimd_prec, "LREAL": _lreal(s.aimd_lreal),
            "IBRION": 0, "MDALGO": s.aimd_mdalgo, "SMASS": s.aimd_smass,
            "ISIF": s.aimd_isif, "ISYM": 0, "POTIM": s.aimd_potim_fs,
            "TEBEG": float(temperature_K), "TEEND": float(temperature_K), "NSW": int(steps),
            "NBLOCK": s.aimd_nblock, "NELMIN": s.aimd_nelmin}


def _structure(atoms: Atoms, velocities_A_fs: np.ndarray | None = None):
    from pymatgen.io.ase import AseAtomsAdaptor

    st = AseAtomsAdaptor.get_structure(atoms)
    for prop in ("magmom", "velocities"):  # only what phonion passes goes into POSCAR
        if prop in st.site_properties:
            st.remove_site_property(prop)
    if velocities_A_fs is not None:
        st.add_site_property("velocities", [list(map(float, v)) for v in velocities_A_fs])
    return st


def psp_dir() -> str | None:
    """The user's POTCAR folder as pymatgen sees it (``PMG_VASP_PSP_DIR`` from the
    environment when pymatgen was imported, or from ~/.config/.pmgrc.yaml)."""
    from pymatgen.core import SETTINGS

    return SETTINGS.get("PMG_VASP_PSP_DIR")


def input_set(task: str, atoms: Atoms, s: VaspSettings, temperature_K: float | None = None,
              steps: int | None = None, velocities_A_fs: np.ndarray | None = None):
    """The pymatgen input set of ``task`` (``static`` | ``relax`` | ``aimd``) with the
    protocol of ``s``. Atoms keep the order given (pymatgen's sorting is off; the
    ``write_*`` functions group them by species first, :func:`species_order`)."""
    from pymatgen.io.vasp.inputs import Kpoints
    from pymatgen.io.vasp.sets import MPMDSet, MPRelaxSet, MPStaticSet

    st = _structure(atoms, velocities_A_fs)
    common = {"user_potcar_functional": s.potcar_functional,
              "user_potcar_settings": dict(s.potcar_symbols) or None,
              "sort_structure": False}
    kpts = {"reciprocal_density": s.reciprocal_density}
    if task == "static":
        return MPStaticSet(st, user_incar_settings=static_incar(s), user_kpoints_settings=kpts,
                           reciprocal_density=s.reciprocal_density, **common)
    if task == "relax":
        return MPRelaxSet(st, user_incar_settings=relax_incar(s), user_kpoints_settings=kpts,
                          **common)
    if task == "aimd":
        return MPMDSet(st, start_temp=float(temperature_K), end_temp=float(temperature_K),
                       nsteps=int(steps), time_step=s.aimd_potim_fs,
                       spin_polarized=s.spin_polarized,
                       user_incar_settings=aimd_incar(s, temperature_K, steps),
                       user_kpoints_settings=Kpoints.gamma_automatic((1, 1, 1)), **common)
    raise ValueError(f"unknown VASP task '{task}'")


def species_order(atoms: Atoms) -> np.ndarray:
    """The order in which the atoms go into POSCAR: grouped by species (in the order the
    species first appear), stable within a species, so that POTCAR holds each element once.
    POSCAR atom ``k`` is input atom ``order[k]``; :func:`read_forces` undoes it."""
    symbols = atoms.get_chemical_symbols()
    first = {s: i for i, s in reversed(list(enumerate(symbols)))}
    return np.array(sorted(range(len(symbols)), key=lambda i: (first[symbols[i]], i)))


def _write(vis, directory: str | os.PathLike, potcar_spec: bool,
           order: np.ndarray | None = None) -> None:
    directory = Path(directory)
    if not potcar_spec and not psp_dir():
        raise ConfigError(
            "VASP needs POTCARs and phonion does not ship them: set PMG_VASP_PSP_DIR to your "
            "folder of VASP PAW potentials in pymatgen's layout (e.g. `pmg config -p "
            "<VASP potpaw folder> <target>` then `pmg config --add PMG_VASP_PSP_DIR <target>`); "
            "docs/dft.md")
    try:
        vis.write_input(directory, potcar_spec=potcar_spec)
    except (OSError, ValueError, RuntimeError) as exc:
        if potcar_spec:
            raise
        raise ConfigError(f"POTCARs for {vis.structure.composition.reduced_formula} from "
                          f"PMG_VASP_PSP_DIR={psp_dir()} ({s_one_line(exc)}); check the "
                          "folder and dft.vasp.potcar_functional / potcar_symbols") from None
    if order is not None:
        (directory / ORDER_FILE).write_text(json.dumps({"poscar_to_input": order.tolist()}) + "\n")


def write_static(atoms: Atoms, directory: str | os.PathLike, settings: VaspSettings,
                 potcar_spec: bool = False) -> None:
    """INCAR, KPOINTS, POSCAR and POTCAR (or POTCAR.spec, the symbols only, with
    ``potcar_spec``) of a static forces run; atoms grouped by species
    (:func:`species_order`, recorded in :data:`ORDER_FILE`)."""
    order = species_order(atoms)
    _write(input_set("static", atoms[order], settings), directory, potcar_spec, order)


def write_relax(atoms: Atoms, directory: str | os.PathLike, settings: VaspSettings,
                potcar_spec: bool = False) -> None:
    """Inputs of a relaxation of positions and cell."""
    order = species_order(atoms)
    _write(input_set("relax", atoms[order], settings), directory, potcar_spec, order)


def write_aimd(atoms: Atoms, directory: str | os.PathLike, settings: VaspSettings,
               temperature_K: float, steps: int, potcar_spec: bool = False,
               velocities_A_fs: np.ndarray | None = None) -> None:
    """Inputs of an NVT AIMD run; ``velocities_A_fs`` (Cartesian, Å/fs as VASP reads them)
    go into POSCAR, otherwise VASP draws Maxwell–Boltzmann velocities at TEBEG."""
    order = species_order(atoms)
    vel = None if velocities_A_fs is None else np.asarray(velocities_A_fs, float)[order]
    _write(input_set("aimd", atoms[order], settings, temperature_K, steps, vel),
           directory, potcar_spec, order)


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


def _gamma_only(directory: Path) -> bool:
    kp = directory / "KPOINTS"
    if not kp.is_file():
        return False
    from pymatgen.io.vasp.inputs import Kpoints

    k = Kpoints.from_file(kp)
    return (str(k.style).lower().endswith("gamma") and len(k.kpts) == 1
            and tuple(k.kpts[0]) == (1, 1, 1) and not any(k.kpts_shift))


# --- checking and parsing --------------------------------------------------------------------

def _incar(directory: Path) -> dict:
    from pymatgen.io.vasp.inputs import Incar

    return dict(Incar.from_file(directory / "INCAR")) if (directory / "INCAR").is_file() else {}


@dataclass
class VasprunScan:
    """What a tolerant pass over a (possibly truncated) vasprun.xml finds."""

    complete: bool  # the closing tag was read
    error: str  # why the XML stops, '' when complete
    parameters: dict[str, Any]
    scf_steps: list[int]  # per complete ionic step
    energies_eV: list[float]  # e_fr_energy per complete ionic step


def scan_vasprun(path: str | os.PathLike) -> VasprunScan:
    """Count the complete ionic steps of a vasprun.xml (a run killed mid-way leaves a
    truncated one), their SCF iterations and free energies, and the run's NELM/NSW/IBRION,
    without building the whole tree (AIMD vasprun files reach gigabytes)."""
    params: dict[str, Any] = {}
    nscf: list[int] = []
    energies: list[float] = []
    complete, error = False, ""
    depth_params = 0
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            for event, el in ET.iterparse(fh, events=("start", "end")):
                tag = el.tag
                if event == "start":
                    if tag == "parameters":
                        depth_params += 1
                    continue
                if depth_params and tag == "i" and el.get("name") in ("NELM", "NSW", "IBRION",
                                                                      "POTIM", "NBLOCK"):
                    params[el.get("name")] = float((el.text or "nan").split()[0])
                elif tag == "parameters":
                    depth_params -= 1
                elif tag == "calculation":
                    nscf.append(len(el.findall("scstep")))
                    e = el.find("energy/i[@name='e_fr_energy']")
                    energies.append(float(e.text) if e is not None else float("nan"))
                    el.clear()
                elif tag == "modeling":
                    complete = True
    except ET.ParseError as exc:
        error = f"XML stops: {exc}"
    except (OSError, EOFError) as exc:
        error = s_one_line(exc)
    return VasprunScan(complete, error, params, nscf, energies)


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


# --- XDATCAR and trajectories ----------------------------------------------------------------

@dataclass
class Xdatcar:
    """The complete frames of an XDATCAR (a truncated last frame is left out)."""

    symbols: list[str]
    cells_A: np.ndarray  # frames × 3 × 3
    frac: np.ndarray  # frames × atoms × 3, wrapped as VASP writes them
    steps: np.ndarray  # ionic step of each frame ('configuration=' number)
    truncated: bool  # the file ends inside a frame


_CONFIG = re.compile(r"^\s*(Direct|Cartesian)\s+configuration\s*=\s*(\d+)", re.IGNORECASE)


def _header(lines: list[str], i: int, path) -> tuple[np.ndarray, list[str], int]:
    try:
        scale = float(lines[i + 1].split()[0])
        lat = np.array([[float(x) for x in lines[i + k].split()[:3]] for k in (2, 3, 4)])
        species = lines[i + 5].split()
        counts = [int(x) for x in lines[i + 6].split()]
    except (IndexError, ValueError):
        raise InputRejected(path, f"no VASP 5 XDATCAR header at line {i + 1}") from None
    if len(species) != len(counts):
        raise InputRejected(path, "species and counts lines of the header do not match")
    if scale < 0:  # a volume
        scale = (-scale / abs(np.linalg.det(lat))) ** (1 / 3)
    symbols = [sp for sp, c in zip(species, counts, strict=True) for _ in range(c)]
    return lat * scale, symbols, i + 7


def read_xdatcar(path: str | os.PathLike) -> Xdatcar:
    """Every complete frame of a VASP 5/6 XDATCAR (gzip is fine; variable-cell headers
    are read per frame). A frame cut by a killed job — missing lines or a last line
    without its newline — is not returned and ``truncated`` is set."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt") as fh:
            text = fh.read()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputRejected(path, f"unreadable XDATCAR ({s_one_line(exc)})") from None
    lines = text.split("\n")
    truncated = False
    if lines and lines[-1].strip():  # no final newline: the last line may be cut mid-number
        lines = lines[:-1]
        truncated = True
    while lines and not lines[-1].strip():
        lines.pop()
    cell, symbols, i = _header(lines, 0, path)
    n = len(symbols)
    cells, frames, steps = [], [], []
    while i < len(lines):
        m = _CONFIG.match(lines[i])
        if not m:
            if not lines[i].strip():
                i += 1
                continue
            cell, sym2, i = _header(lines, i, path)  # variable cell: a header per frame
            if sym2 != symbols:
                raise InputRejected(path, "the atoms change between frames")
            continue
        block = lines[i + 1:i + 1 + n]
        if len(block) < n:
            truncated = True
            break
        try:
            xyz = np.array([[float(x) for x in ln.split()[:3]] for ln in block])
        except ValueError:
            truncated = True
            break
        if xyz.shape != (n, 3):
            truncated = True
            break
        if m.group(1).lower() == "cartesian":
            xyz = np.linalg.solve(cell.T, xyz.T).T
        frames.append(xyz)
        cells.append(cell)
        steps.append(int(m.group(2)))
        i += 1 + n
    if not frames:
        raise InputRejected(path, "no complete frame")
    return Xdatcar(symbols, np.array(cells), np.array(frames), np.array(steps), truncated)


def _run_params(directory: Path) -> dict:
    """POTIM, NBLOCK, TEBEG of a run: INCAR, else vasprun.xml's parameters."""
    incar = _incar(directory)
    out = {k: incar[k] for k in ("POTIM", "NBLOCK", "TEBEG") if k in incar}
    vr = directory / "vasprun.xml"
    if ("POTIM" not in out or "NBLOCK" not in out) and vr.is_file():
        scan = scan_vasprun(vr)
        for k in ("POTIM", "NBLOCK"):
            out.setdefault(k, scan.parameters.get(k))
    out.setdefault("NBLOCK", 1)
    return out


def _xdatcar_path(directory: Path) -> Path:
    for name in ("XDATCAR", "XDATCAR.gz"):
        if (directory / name).is_file():
            return directory / name
    raise InputRejected(directory, "no XDATCAR in the run directory")


def _segment(directory: Path) -> dict:
    p = directory / SEGMENT_FILE
    return json.loads(p.read_text()) if p.is_file() else {"first_step": 1}


def _trajectory(symbols, cell, frac, steps, potim_fs, nblock, temperature_K,
                energies=None) -> dict:
    """XDATCAR frames as a trajectory: POTIM × NBLOCK between frames, velocities from the
    positions, the thermostat's target as each frame's temperature."""
    temps = None if temperature_K is None else np.full(len(frac), float(temperature_K))
    return trajectory_record(symbols, cell, frac, steps, float(potim_fs), int(nblock),
                             temperature_K, temperatures_K=temps, energies_eV=energies)


def _energies_of(directory: Path, steps: np.ndarray) -> np.ndarray | None:
    vr = directory / "vasprun.xml"
    if not vr.is_file():
        return None
    e = np.asarray(scan_vasprun(vr).energies_eV)
    idx = np.asarray(steps) - 1
    if len(idx) == 0 or idx.max() >= len(e) or not np.isfinite(e[idx]).all():
        return None
    return e[idx]


def read_trajectory(directory: str | os.PathLike, frame_dt_ps: float | None = None,
                    temperature_K: float | None = None) -> dict:
    """The AIMD trajectory of a run directory (or an XDATCAR file) in the layout of
    :func:`phonion.formats.read_trajectory`: complete frames only, positions unwrapped with
    :func:`phonion.geometry.unwrap`, time between frames POTIM × NBLOCK from INCAR (or
    vasprun.xml; ``frame_dt_ps`` for a bare XDATCAR), velocities by central differences
    (XDATCAR holds none: meaningful well below 1/(2 frame_dt_ps)), free energies per frame
    from vasprun.xml when it covers every frame. NVT only: a cell that changes is refused."""
    p = Path(directory)
    xpath, d = (p, p.parent) if p.is_file() else (_xdatcar_path(p), p)
    x = read_xdatcar(xpath)
    if not np.allclose(x.cells_A, x.cells_A[0], atol=1e-6):
        raise InputRejected(xpath, "the cell changes between frames (NpT); phonion's "
                            "trajectories are NVT")
    params = _run_params(d) if d.is_dir() and (d / "INCAR").is_file() else {"NBLOCK": 1}
    if frame_dt_ps is not None:
        potim, nblock = frame_dt_ps * 1000.0, 1
    elif params.get("POTIM"):
        potim, nblock = float(params["POTIM"]), int(params.get("NBLOCK") or 1)
    else:
        raise InputRejected(xpath, "no INCAR/vasprun.xml with POTIM beside it: give "
                            "frame_dt_ps")
    temp = temperature_K if temperature_K is not None else params.get("TEBEG")
    return _trajectory(x.symbols, x.cells_A[0], x.frac, x.steps, potim, nblock, temp,
                       None if p.is_file() else _energies_of(d, x.steps))


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


def concatenate_segments(directories: list[str | os.PathLike],
                         temperature_K: float | None = None) -> dict:
    """One trajectory from the segments of an AIMD run (in order): each segment's frames
    placed at their global steps (``first_step`` of :data:`SEGMENT_FILE`); frames of a
    segment at or after the next segment's first step are replaced by the next segment's
    (it recomputed them). Refused when a step is missing or the atoms differ."""
    segs = []
    for d in map(Path, directories):
        x = read_xdatcar(_xdatcar_path(d))
        first = int(_segment(d)["first_step"])
        segs.append((d, x, x.steps + first - 1, _run_params(d)))
    symbols = segs[0][1].symbols
    for d, x, *_ in segs:
        if x.symbols != symbols:
            raise InputRejected(d, "other atoms than the first segment")
    nblock = int(segs[0][3].get("NBLOCK") or 1)
    keep = stitch(directories, [g for _, _, g, _ in segs], nblock)
    frac = np.concatenate([x.frac[m] for (_, x, _, _), m in zip(segs, keep, strict=True)])
    steps = np.concatenate([g[m] for (_, _, g, _), m in zip(segs, keep, strict=True)])
    energies = [_energies_of(d, x.steps[m]) for (d, x, _, _), m in zip(segs, keep, strict=True)]
    # unwrap across the seams too: the segments' wrapped coordinates continue each other
    potim = float(segs[0][3]["POTIM"])
    temp = temperature_K if temperature_K is not None else segs[0][3].get("TEBEG")
    e_all = np.concatenate(energies) if all(e is not None for e in energies) else None
    out = _trajectory(symbols, segs[0][1].cells_A[0], frac, steps, potim, nblock, temp, e_all)
    out["segments"] = [os.fspath(d) for d, *_ in segs]
    return out
