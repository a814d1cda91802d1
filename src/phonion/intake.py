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
import os
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
    """Materials found at parse time: accepted id → path, rejected id → reason, and what
    was looked at (for a clear message when nothing is found)."""

    materials: dict[str, Path] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    searched: list[str] = field(default_factory=list)
    #: extra columns of a table with a header (id → {column: value}), e.g. the source and
    #: database id that ``phonion fetch`` writes; ignored by the workflow, kept for tables
    columns: dict[str, dict[str, str]] = field(default_factory=dict)

    def nothing_found(self) -> str:
        """The parse-time error when neither a material nor a rejected id was found."""
        where = "; ".join(self.searched) or "no structures.folder and no structures.table set"
        return (f"no structures found ({where}); a folder is searched for "
                f"{', '.join('*' + s for s in STRUCTURE_SUFFIXES)}, "
                f"{', '.join(p + '*' for p in STRUCTURE_PREFIXES)}")


def material_id(path: Path) -> str:
    """Id of a structure file: its name without the structure suffix."""
    name = path.name
    for suffix in STRUCTURE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _is_structure_name(path: Path) -> bool:
    name = path.name
    return name.lower().endswith(STRUCTURE_SUFFIXES) or name.startswith(STRUCTURE_PREFIXES)


def discover(folder: str | Path | None = None, table: str | Path | None = None) -> Discovery:
    """List materials from ``folder`` (CIF/POSCAR files) and/or ``table`` (TSV: id, path).

    Table paths are relative to the table's folder; further columns of a table whose first
    line is a header (``id  path  …``) are kept in :attr:`Discovery.columns`. Nothing is read
    but the table: this runs when the workflow parses. An id that is not a safe file name,
    or that occurs more than once, is rejected (all occurrences); so is a table row whose
    file does not exist and a dangling symbolic link. Every rejected id gets its line in the
    status table.
    """
    entries: list[tuple[str, Path]] = []
    found = Discovery()
    if folder:
        folder = Path(folder)
        if not folder.is_dir():
            raise ConfigError(f"structures.folder '{folder}' is not a directory")
        names = [p for p in sorted(folder.iterdir()) if _is_structure_name(p)]
        entries += [(material_id(p), p) for p in names if not p.is_dir()]
        found.searched.append(f"structures.folder '{folder}' holds {len(names)} structure files")
    if table:
        table = Path(table)
        if not table.is_file():
            raise ConfigError(f"structures.table '{table}' does not exist")
        with open(table, newline="") as fh:
            rows = [r for r in csv.reader(fh, delimiter="\t") if r and not r[0].startswith("#")]
        extra: list[str] = []
        if rows and [c.strip().lower() for c in rows[0][:2]] == ["id", "path"]:
            extra = [c.strip() for c in rows[0][2:]]
            rows = rows[1:]
        for i, row in enumerate(rows, start=2):
            if len(row) < 2:
                raise ConfigError(f"structures.table '{table}' line {i}: need 'id<TAB>path'")
            entries.append((row[0].strip(), (table.parent / row[1].strip())))
            if extra:
                found.columns[row[0].strip()] = {
                    name: value.strip() for name, value in zip(extra, row[2:], strict=False)
                    if name}
        found.searched.append(f"structures.table '{table}' lists {len(rows)} rows")

    seen: dict[str, list[Path]] = {}
    for mid, path in entries:
        seen.setdefault(mid, []).append(path)
    for mid, paths in seen.items():
        path = paths[0]
        if not SAFE_ID.match(mid):
            found.rejected[mid] = (
                f"id '{mid}' is not a safe file name (letters, digits, '.', '_', '+', '-'; "
                f"at most 100 characters): rename {path}"
            )
        elif len(paths) > 1:
            found.rejected[mid] = "duplicate id: " + ", ".join(str(p) for p in paths)
        elif path.is_symlink() and not path.exists():
            found.rejected[mid] = f"{path} is a dangling symbolic link (to {os.readlink(path)})"
        elif not path.is_file():
            found.rejected[mid] = f"structure file {path} does not exist"
        else:
            found.materials[mid] = path
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
            ordered = struct.is_ordered
            atoms = AseAtomsAdaptor.get_atoms(struct) if ordered else None
    except Exception as exc:  # noqa: BLE001 - any parser failure is a triage verdict
        # the parser's message can quote the file: keep it short and printable
        msg = "".join(c if c.isprintable() else " " for c in str(exc))
        msg = " ".join(msg.split())[:120] or type(exc).__name__
        raise StructureRejected(f"unreadable structure file {path.name} "
                                f"({type(exc).__name__}: {msg})") from None
    if not ordered:
        partial = sorted({str(s.species) for s in struct if not s.is_ordered})
        raise StructureRejected(
            f"partial occupancy on {len([s for s in struct if not s.is_ordered])} sites "
            f"({'; '.join(partial)[:120]}): order the structure first (e.g. enumerate "
            f"supercells) and give the ordered cell"
        )
    return atoms


def check_sane(atoms: Atoms, s: IntakeSettings = IntakeSettings()) -> None:
    """Reject what no native library (spglib, ASE's neighbour list) may be given: non-finite
    coordinates or lattice, a degenerate cell, more than ``max_input_atoms`` atoms before any
    symmetry reduction, and mostly empty cells (a molecule or slab in vacuum, an isolated
    atom) whose volume per atom exceeds ``max_volume_per_atom_A3``."""
    cell = np.asarray(atoms.cell.array, float)
    if not np.isfinite(cell).all():
        raise StructureRejected("non-finite lattice vectors (nan or inf) in the input file")
    if not np.isfinite(atoms.positions).all():
        raise StructureRejected("non-finite atomic coordinates (nan or inf) in the input file")
    if len(atoms) == 0:
        raise StructureRejected("no atoms in the structure")
    if len(atoms) > s.max_input_atoms:
        raise StructureRejected(
            f"{len(atoms)} atoms in the input cell > structures.max_input_atoms = "
            f"{s.max_input_atoms} (checked before any symmetry analysis)")
    lengths = np.linalg.norm(cell, axis=1)
    volume = abs(float(np.linalg.det(cell)))
    if lengths.min() < 0.5 or volume < 1e-3 * np.prod(lengths):
        raise StructureRejected(
            f"degenerate cell: lattice vector lengths {np.round(lengths, 3).tolist()} Å, "
            f"volume {volume:.3g} Å³")
    if volume / len(atoms) > s.max_volume_per_atom_A3:
        raise StructureRejected(
            f"{volume / len(atoms):.3g} Å³ per atom > structures.max_volume_per_atom_A3 = "
            f"{s.max_volume_per_atom_A3}: vacuum in the cell (molecule, slab or isolated "
            "atom), not a bulk crystal")


def min_distance(atoms: Atoms, cutoff_A: float) -> float | None:
    """Shortest interatomic distance below ``cutoff_A`` (periodic images included), or None."""
    d = neighbor_list("d", atoms, cutoff_A)
    return float(d.min()) if len(d) else None


def triage(atoms: Atoms, s: IntakeSettings = IntakeSettings()) -> Atoms:
    """Return the primitive cell of ``atoms`` or raise :class:`StructureRejected`.

    Checks, in order: :func:`check_sane` (before any native library sees the structure);
    the mobile ion is present; no two atoms closer than ``min_distance_A`` (Å); the
    primitive cell has at most ``max_atoms`` atoms.
    """
    mobile_ion, max_atoms, min_distance_A, symprec = (s.mobile_ion, s.max_atoms,
                                                      s.min_distance_A, s.symprec)
    check_sane(atoms, s)
    symbols = set(atoms.get_chemical_symbols())
    if mobile_ion not in symbols:
        raise StructureRejected(
            f"no mobile ion {mobile_ion} (contains {', '.join(sorted(symbols))}); "
            "set mobile_ion in config if another ion is meant"
        )
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


def triage_and_describe(atoms: Atoms, s: IntakeSettings = IntakeSettings()) -> dict:
    """:func:`triage` and :func:`describe` of the input and its primitive cell: the part of
    intake that hands the structure to native libraries (run in a guarded child process)."""
    from .formats import atoms_to_dict

    prim = triage(atoms, s)
    return {"input": describe(atoms, s.symprec), "primitive": describe(prim, s.symprec),
            "structure": atoms_to_dict(prim)}


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
