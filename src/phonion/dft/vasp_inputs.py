"""VASP inputs: the protocol (:class:`VaspSettings`, seed 000 §2.2, §2.6) and the input sets
of static, relaxation and AIMD runs through pymatgen (:mod:`phonion.dft.vasp` re-exports
the verbs). pymatgen is imported inside the functions: importing this module stays light."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from ase import Atoms

from ..errors import ConfigError
from ..settings_base import Settings, config_field
from .common import s_one_line
from .vasp_outputs import ORDER_FILE


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
