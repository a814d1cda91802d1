"""Structures from databases: Materials Project and OQMD queries, cached, filtered, deduplicated.

Run once, before a campaign (``phonion fetch --config config/config.yaml``); it is not a
stage. It writes, under ``databases.output``:

- ``structures/<id>.cif``: one CIF per kept material (ids ``mp-1234``, ``oqmd-5678``);
- ``structures.tsv``: ``id  path  source  database_id  formula  band_gap_eV
  formation_energy_eV_atom  e_above_hull_eV_atom``, the table that ``structures.table`` reads
  (:func:`phonion.intake.discover` uses the first two columns and keeps the others);
- ``duplicates.tsv``: every dropped duplicate with the id kept instead and why;
- ``rejected.tsv``: every database entry that fails a filter, with the filter.

Every raw response is written to ``databases.cache`` (one JSON file per query, named by a
hash of the query, the API key never part of it) *before* it is parsed, and a cached query
is never asked again: a rerun, and every SLURM job, works offline. ``--refresh`` asks again.

Filters (seed 000: the mobile ion, band gap > 0, formation energy < 0; seed 001: E_hull cap,
number of elements): the query asks the database for them and every entry is checked again
here, so a database that ignores a filter changes nothing. Duplicates, within a source and
across sources, are found with pymatgen's ``StructureMatcher`` (its default tolerances);
the kept one of a group is the lowest E_hull, then Materials Project before OQMD, then the
smallest id. No Snakemake import: this runs outside the workflow. Modules: :mod:`.core` (settings,
entries), :mod:`.sources` (the cache, Materials Project, OQMD), this one (filters,
duplicates, the whole step and its files).
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Iterable
from pathlib import Path

from ..formats import atomic_path
from .core import (  # noqa: F401 - API
    MP_FIELDS,
    OQMD_FIELDS,
    SAFE_ID,
    SOURCE_NAMES,
    SOURCES,
    TABLE_COLUMNS,
    DatabaseError,
    DatabaseSettings,
    Entry,
    FetchResult,
    _one_line,
)
from .sources import (  # noqa: F401 - API
    cached,
    fetch_mp,
    fetch_oqmd,
    http_get_json,
    mp_entry,
    mp_query,
    mp_search,
    oqmd_entry,
    oqmd_filter,
    query_key,
)

# --- the cache ----------------------------------------------------------------------------


# --- Materials Project --------------------------------------------------------------------


# --- OQMD ---------------------------------------------------------------------------------


# --- filters and duplicates ---------------------------------------------------------------

def check(struct, props: dict, s: DatabaseSettings) -> str:
    """Why an entry fails the filters ('' when it passes)."""
    elements = sorted({el.symbol for el in struct.composition.elements})
    gap, ef, hull = (props["band_gap_eV"], props["formation_energy_eV_atom"],
                     props["e_above_hull_eV_atom"])
    if s.mobile_ion not in elements:
        return f"no mobile ion {s.mobile_ion} (contains {', '.join(elements)})"
    if not struct.is_ordered:
        return "partial occupancy"
    if gap is None or not gap > s.band_gap_min_eV:
        return f"band gap {gap} eV, not > databases.band_gap_min_eV = {s.band_gap_min_eV}"
    if ef is None or not ef < s.formation_energy_max_eV_atom:
        return (f"formation energy {ef} eV/atom, not < databases.formation_energy_max_eV_atom"
                f" = {s.formation_energy_max_eV_atom}")
    if s.e_hull_max_eV_atom is not None and (hull is None or hull > s.e_hull_max_eV_atom):
        return f"E_hull {hull} eV/atom > databases.e_hull_max_eV_atom = {s.e_hull_max_eV_atom}"
    if len(struct) > s.max_atoms:
        return f"{len(struct)} atoms > databases.max_atoms = {s.max_atoms}"
    n = len(elements)
    if n < s.min_elements or (s.max_elements is not None and n > s.max_elements):
        return (f"{n} elements, outside databases.min_elements..max_elements = "
                f"{s.min_elements}..{s.max_elements}")
    excluded = sorted(set(elements) & set(s.exclude_elements))
    if excluded:
        return f"excluded elements {', '.join(excluded)} (databases.exclude_elements)"
    if s.allowed_elements:
        other = sorted(set(elements) - set(s.allowed_elements) - {s.mobile_ion})
        if other:
            return f"elements {', '.join(other)} not in databases.allowed_elements"
    return ""


def material_id(source: str, database_id: str) -> str:
    """Campaign id of a database entry: ``mp-1234`` (MP's own id), ``oqmd-5678``."""
    mid = database_id if source == "mp" else f"{source}-{database_id}"
    return SAFE_ID.sub("_", mid)[:100]


def deduplicate(entries: list[Entry], s: DatabaseSettings) -> tuple[list[Entry], list]:
    """Group equal structures (pymatgen ``StructureMatcher`` with ``ltol``, ``stol``,
    ``angle_tol``; primitive cells, volumes scaled) and keep the preferred one of each
    group. Returns (kept, [(dropped id, kept id, reason)])."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    if not s.deduplicate or len(entries) < 2:
        return sorted(entries, key=lambda e: e.id), []
    matcher = StructureMatcher(ltol=s.ltol, stol=s.stol, angle_tol=s.angle_tol,
                               primitive_cell=True, scale=True, attempt_supercell=False)
    ordered = sorted(entries, key=Entry.preference)
    index = {id(e.structure): e for e in ordered}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        groups = matcher.group_structures([e.structure for e in ordered])
    kept, dropped = [], []
    tol = f"StructureMatcher ltol={s.ltol}, stol={s.stol}, angle_tol={s.angle_tol}°"
    for group in groups:
        members = sorted((index[id(g)] for g in group), key=Entry.preference)
        best = members[0]
        kept.append(best)
        for other in members[1:]:
            dropped.append((other.id, best.id,
                            f"same structure as {best.id} ({tol}); kept: {_why(best, other)}"))
    return sorted(kept, key=lambda e: e.id), sorted(dropped)


def _why(best: Entry, other: Entry) -> str:
    hb, ho = best.e_above_hull_eV_atom, other.e_above_hull_eV_atom
    if hb is not None and (ho is None or hb < ho):
        return (f"lower E_hull ({hb:.4g} vs "
                f"{'unknown' if ho is None else format(ho, '.4g')} eV/atom)")
    if best.source != other.source:
        return (f"equal E_hull, {SOURCE_NAMES[best.source]} before "
                f"{SOURCE_NAMES[other.source]}")
    return "equal E_hull, smaller id"


# --- the whole step -----------------------------------------------------------------------

FETCHERS = {"mp": (fetch_mp, mp_entry), "oqmd": (fetch_oqmd, oqmd_entry)}


def fetch(s: DatabaseSettings, refresh: bool = False, offline: bool = False,
          root: str | Path = ".") -> FetchResult:
    """Query every source of ``s`` (or read its cache), filter, deduplicate, and write the
    CIFs, ``structures.tsv``, ``duplicates.tsv`` and ``rejected.tsv`` under ``s.output``
    (relative paths are relative to ``root``)."""
    root = Path(root)
    cache, out = root / s.cache, root / s.output
    result = FetchResult()
    entries: list[Entry] = []
    for source in s.sources:
        get, parse = FETCHERS[source]
        for raw in get(s, cache, result, refresh=refresh, offline=offline):
            try:
                dbid, struct, props = parse(raw)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                label = raw.get("material_id", raw.get("entry_id", "?")) if isinstance(
                    raw, dict) else "?"
                result.rejected.append((material_id(source, str(label)), source,
                                        f"unreadable entry ({_one_line(exc)})"))
                continue
            mid = material_id(source, dbid)
            why = check(struct, props, s)
            if why:
                result.rejected.append((mid, source, why))
                continue
            entries.append(Entry(mid, source, dbid, struct, float(props["band_gap_eV"]),
                                 float(props["formation_energy_eV_atom"]),
                                 None if props["e_above_hull_eV_atom"] is None
                                 else float(props["e_above_hull_eV_atom"])))
    seen: dict[str, Entry] = {}
    for e in entries:  # the same id twice in a response (a repeated page row)
        if e.id in seen:
            result.duplicates.append((e.id, e.id, "listed twice by the database"))
        seen.setdefault(e.id, e)
    result.kept, dups = deduplicate(list(seen.values()), s)
    result.duplicates += dups
    result.rejected.sort()
    write_outputs(out, result)
    return result


def write_outputs(out: Path, result: FetchResult) -> None:
    """CIFs (atomically, pymatgen's writer), then the three tables; CIFs of an earlier
    fetch that are no longer kept are removed."""
    from pymatgen.io.cif import CifWriter

    folder = out / "structures"
    folder.mkdir(parents=True, exist_ok=True)
    keep = {f"{e.id}.cif" for e in result.kept}
    for e in result.kept:
        with atomic_path(folder / f"{e.id}.cif") as tmp:
            CifWriter(e.structure).write_file(tmp)
    for old in folder.glob("*.cif"):
        if old.name not in keep:
            old.unlink()
    _write_tsv(out / "structures.tsv", TABLE_COLUMNS,
               [(e.id, f"structures/{e.id}.cif", e.source, e.database_id, e.formula,
                 _num(e.band_gap_eV), _num(e.formation_energy_eV_atom),
                 _num(e.e_above_hull_eV_atom)) for e in result.kept])
    _write_tsv(out / "duplicates.tsv", ("dropped_id", "kept_id", "reason"), result.duplicates)
    _write_tsv(out / "rejected.tsv", ("id", "source", "reason"), result.rejected)


def _write_tsv(path: Path, header: Iterable[str], rows: Iterable[Iterable]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.6g}"


def summary(result: FetchResult, s: DatabaseSettings) -> str:
    """The lines the command prints."""
    out = Path(s.output)
    asked = ", ".join(f"{SOURCE_NAMES[k]} {result.queried.get(k, 0)} asked / "
                      f"{result.cached.get(k, 0)} cached" for k in s.sources)
    return (f"{len(result.kept)} structures in {out / 'structures.tsv'} "
            f"({len(result.duplicates)} duplicates in {out / 'duplicates.tsv'}, "
            f"{len(result.rejected)} entries rejected in {out / 'rejected.tsv'}); "
            f"responses: {asked}\n"
            f"campaign: structures: {{table: {out / 'structures.tsv'}}}")
