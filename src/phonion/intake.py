"""Intake: find structures, read them, and triage the ones that cannot be screened.

Two verbs:

- :func:`discover` lists materials from a folder and/or a TSV table *without
  reading any file* (it runs at Snakemake parse time, so a campaign of
  thousands of materials must list in well under a second) and rejects ids
  that are duplicated or unsafe as file names.
- :func:`triage` reads one structure and returns its primitive cell, or raises
  :class:`~phonion.errors.StructureRejected` whose message is the one-line
  reason written to ``results/campaign/status.tsv``.
"""

from __future__ import annotations

import csv
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.neighborlist import neighbor_list

from .errors import ConfigError, StructureRejected
from .settings import IntakeSettings
from .symmetry import primitive, spacegroup

#: File names recognised in a structures folder.
STRUCTURE_SUFFIXES = (".cif", ".vasp", ".poscar")
STRUCTURE_PREFIXES = ("POSCAR", "CONTCAR")
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")


@dataclass
class Discovery:
    """Materials found at parse time: accepted id → path, rejected id → reason."""

    materials: dict[str, Path] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)


def material_id(path: Path) -> str:
    """Id of a structure file: its name without the structure suffix."""
    name = path.name
    for suffix in STRUCTURE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _is_structure_file(path: Path) -> bool:
    name = path.name
    return path.is_file() and (
        name.lower().endswith(STRUCTURE_SUFFIXES) or name.startswith(STRUCTURE_PREFIXES)
    )


def discover(folder: str | Path | None = None, table: str | Path | None = None) -> Discovery:
    """List materials from ``folder`` (CIF/POSCAR files) and/or ``table`` (TSV: id, path).

    Table paths are relative to the table's folder. An id that is not a safe
    file name, or that occurs more than once, is rejected (all occurrences).
    """
    entries: list[tuple[str, Path]] = []
    if folder:
        folder = Path(folder)
        if not folder.is_dir():
            raise ConfigError(f"structures.folder '{folder}' is not a directory")
        entries += [(material_id(p), p) for p in sorted(folder.iterdir()) if _is_structure_file(p)]
    if table:
        table = Path(table)
        if not table.is_file():
            raise ConfigError(f"structures.table '{table}' does not exist")
        with open(table, newline="") as fh:
            rows = [r for r in csv.reader(fh, delimiter="\t") if r and not r[0].startswith("#")]
        if rows and [c.strip().lower() for c in rows[0][:2]] == ["id", "path"]:
            rows = rows[1:]
        for i, row in enumerate(rows, start=2):
            if len(row) < 2:
                raise ConfigError(f"structures.table '{table}' line {i}: need 'id<TAB>path'")
            entries.append((row[0].strip(), (table.parent / row[1].strip())))

    found = Discovery()
    seen: dict[str, list[Path]] = {}
    for mid, path in entries:
        seen.setdefault(mid, []).append(path)
    for mid, paths in seen.items():
        if not SAFE_ID.match(mid):
            found.rejected[mid] = (
                f"id '{mid}' is not a safe file name (letters, digits, '.', '_', '+', '-'; "
                f"at most 100 characters): rename {paths[0]}"
            )
        elif len(paths) > 1:
            found.rejected[mid] = "duplicate id: " + ", ".join(str(p) for p in paths)
        else:
            found.materials[mid] = paths[0]
    return found


def read_structure(path: str | Path) -> Atoms:
    """Read a CIF/POSCAR file with pymatgen; reject unreadable or partially occupied input."""
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            struct = Structure.from_file(path)
    except Exception as exc:  # noqa: BLE001 - any parser failure is a triage verdict
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise StructureRejected(f"unreadable structure file {path.name}: {msg[:200]}") from None
    if not struct.is_ordered:
        partial = sorted({str(s.species) for s in struct if not s.is_ordered})
        raise StructureRejected(
            f"partial occupancy on {len([s for s in struct if not s.is_ordered])} sites "
            f"({'; '.join(partial)[:120]}): order the structure first (e.g. enumerate "
            f"supercells) and give the ordered cell"
        )
    return AseAtomsAdaptor.get_atoms(struct)


def min_distance(atoms: Atoms, cutoff_A: float) -> float | None:
    """Shortest interatomic distance below ``cutoff_A`` (periodic images included), or None."""
    d = neighbor_list("d", atoms, cutoff_A)
    return float(d.min()) if len(d) else None


def triage(atoms: Atoms, s: IntakeSettings = IntakeSettings()) -> Atoms:
    """Return the primitive cell of ``atoms`` or raise :class:`StructureRejected`.

    Checks, in order: the mobile ion is present; no two atoms closer than
    ``min_distance_A`` (Å); the primitive cell has at most ``max_atoms`` atoms.
    """
    mobile_ion, max_atoms, min_distance_A, symprec = (s.mobile_ion, s.max_atoms,
                                                      s.min_distance_A, s.symprec)
    symbols = set(atoms.get_chemical_symbols())
    if mobile_ion not in symbols:
        raise StructureRejected(
            f"no mobile ion {mobile_ion} (contains {', '.join(sorted(symbols))}); "
            "set mobile_ion in config if another ion is meant"
        )
    if len(atoms) == 0 or abs(atoms.get_volume()) < 1e-6:
        raise StructureRejected("empty structure or zero cell volume")
    dmin = min_distance(atoms, min_distance_A)
    if dmin is not None:
        raise StructureRejected(
            f"overlapping atoms: two atoms {dmin:.3f} Å apart (< structures.min_distance_A = "
            f"{min_distance_A} Å)"
        )
    prim = primitive(atoms, symprec=symprec)
    if len(prim) > max_atoms:
        raise StructureRejected(
            f"{len(prim)} atoms in the primitive cell > structures.max_atoms = {max_atoms}"
        )
    return prim


def describe(atoms: Atoms, symprec: float = 1e-3) -> dict:
    """Formula, atom count, space group and density of a structure."""
    sg, num = spacegroup(atoms, symprec)
    return {
        "formula": atoms.get_chemical_formula(mode="metal", empirical=False),
        "n_atoms": len(atoms),
        "spacegroup": sg,
        "spacegroup_number": num,
        "volume_A3": float(atoms.get_volume()),
        "density_g_cm3": float(np.sum(atoms.get_masses()) * units._amu * 1e3
                               / (atoms.get_volume() * 1e-24)),
    }
