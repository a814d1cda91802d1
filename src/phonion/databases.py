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
smallest id. No Snakemake import: this runs outside the workflow.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import ConfigError, PhonionError
from .formats import atomic_path

#: Sources in the order of preference at equal E_hull.
SOURCES = ("mp", "oqmd")
SOURCE_NAMES = {"mp": "Materials Project", "oqmd": "OQMD"}
#: Columns of structures.tsv (``id`` and ``path`` first: what ``structures.table`` needs).
TABLE_COLUMNS = ("id", "path", "source", "database_id", "formula", "band_gap_eV",
                 "formation_energy_eV_atom", "e_above_hull_eV_atom")
MP_FIELDS = ("material_id", "structure", "formula_pretty", "band_gap",
             "formation_energy_per_atom", "energy_above_hull", "nsites", "elements")
OQMD_FIELDS = ("name", "entry_id", "unit_cell", "sites", "band_gap", "delta_e", "stability",
               "natoms")
SAFE_ID = re.compile(r"[^A-Za-z0-9._+-]")


class DatabaseError(PhonionError):
    """A database cannot be queried (no key, no network, a bad answer); one line, naming
    what to set or do."""


@dataclass(frozen=True)
class DatabaseSettings:
    """Config ``databases`` (and ``mobile_ion``); defaults equal the schema's."""

    mobile_ion: str = "Na"
    sources: tuple[str, ...] = SOURCES
    output: str = "databases"
    cache: str = "databases/cache"
    band_gap_min_eV: float = 0.0
    formation_energy_max_eV_atom: float = 0.0
    e_hull_max_eV_atom: float | None = None
    max_atoms: int = 64
    min_elements: int = 1
    max_elements: int | None = None
    allowed_elements: tuple[str, ...] = ()
    exclude_elements: tuple[str, ...] = ()
    mp_include_gnome: bool = False
    oqmd_url: str = "https://oqmd.org/oqmdapi/formationenergy"
    oqmd_page_size: int = 500
    deduplicate: bool = True
    ltol: float = 0.2
    stol: float = 0.3
    angle_tol: float = 5.0
    timeout_s: float = 120.0

    @classmethod
    def from_config(cls, config: dict, **override: Any) -> DatabaseSettings:
        """From a campaign config (its ``databases`` section and ``mobile_ion``; left-out
        keys get the defaults), with command-line ``override`` values that are not None."""
        section = dict(config.get("databases") or {})
        names = {f.name for f in fields(cls)} - {"mobile_ion"}
        unknown = sorted(set(section) - names)
        if unknown:
            raise ConfigError(f"databases: unknown keys {', '.join(unknown)} "
                              "(config/README.md lists them)")
        values = {"mobile_ion": config.get("mobile_ion", cls.mobile_ion), **section,
                  **{k: v for k, v in override.items() if v is not None}}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        s = cls(**values)
        bad = [x for x in s.sources if x not in SOURCES]
        if bad or not s.sources:
            raise ConfigError(f"databases.sources {list(s.sources)}: each one of "
                              f"{', '.join(SOURCES)}")
        return s


@dataclass
class Entry:
    """One database material that passed the filters (energies in eV/atom)."""

    id: str
    source: str
    database_id: str
    structure: Any  # pymatgen Structure
    band_gap_eV: float
    formation_energy_eV_atom: float
    e_above_hull_eV_atom: float | None

    @property
    def formula(self) -> str:
        return self.structure.composition.reduced_formula

    def preference(self) -> tuple:
        """Sort key of the kept one of a duplicate group: lowest E_hull (unknown last),
        Materials Project before OQMD, then the id (numerically)."""
        hull = self.e_above_hull_eV_atom
        num = re.sub(r"\D", "", self.database_id)
        return (hull is None, hull if hull is not None else 0.0, SOURCES.index(self.source),
                int(num) if num else 0, self.id)


@dataclass
class FetchResult:
    kept: list[Entry] = field(default_factory=list)
    duplicates: list[tuple[str, str, str]] = field(default_factory=list)  # dropped, kept, why
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # id, source, why
    queried: dict[str, int] = field(default_factory=dict)  # source → responses asked
    cached: dict[str, int] = field(default_factory=dict)  # source → responses from cache


# --- the cache ----------------------------------------------------------------------------

def query_key(source: str, query: dict) -> str:
    """Hash of a query (what the cache file is named by); never includes a key."""
    text = json.dumps({"source": source, "query": query}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _cache_file(cache: Path, source: str, query: dict) -> Path:
    return cache / f"{source}-{query_key(source, query)}.json"


def _read_cache(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text())["response"]
    except (OSError, ValueError, KeyError):
        return None  # missing or damaged: ask again


def _write_cache(path: Path, source: str, query: dict, response: Any) -> None:
    record = {"source": source, "query": query,
              "fetched_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "response": response}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, default=_jsonable) + "\n")


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "as_dict"):
        return obj.as_dict()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def cached(cache: Path, source: str, query: dict, ask: Callable[[], Any], refresh: bool,
           offline: bool, counts: FetchResult) -> Any:
    """The response to ``query``: from the cache, or asked (``ask()``) and cached before
    anything reads it."""
    path = _cache_file(cache, source, query)
    if not refresh:
        response = _read_cache(path)
        if response is not None:
            counts.cached[source] = counts.cached.get(source, 0) + 1
            return response
    if offline:
        raise DatabaseError(f"{SOURCE_NAMES[source]} query not in the cache {cache} "
                            "(--offline): run 'phonion fetch' once where the network is "
                            "reachable, with the same config")
    response = ask()
    _write_cache(path, source, query, response)
    counts.queried[source] = counts.queried.get(source, 0) + 1
    return json.loads(json.dumps(response, default=_jsonable))  # what a rerun reads


# --- Materials Project --------------------------------------------------------------------

def mp_query(s: DatabaseSettings) -> dict:
    """Keyword arguments of ``MPRester().materials.summary.search`` (mp-api): the filters
    that the server applies (ranges are inclusive there; strict limits are checked here)."""
    q: dict[str, Any] = {
        "elements": [s.mobile_ion],
        # MP stores metals with a gap of exactly 0: the lower bound keeps them out
        "band_gap": (max(s.band_gap_min_eV, 1e-3), 1000.0),
        "formation_energy": (-100.0, s.formation_energy_max_eV_atom),
        "num_sites": (1, s.max_atoms),
        "deprecated": False,
        "include_gnome": s.mp_include_gnome,
        "fields": list(MP_FIELDS),
    }
    if s.e_hull_max_eV_atom is not None:
        q["energy_above_hull"] = (0.0, s.e_hull_max_eV_atom)
    if s.min_elements > 1 or s.max_elements is not None:
        q["num_elements"] = (s.min_elements, s.max_elements or 100)
    if s.exclude_elements:
        q["exclude_elements"] = list(s.exclude_elements)
    return q


def mp_search(api_key: str, query: dict) -> list[dict]:
    """Ask Materials Project (mp-api); plain dicts, structures as pymatgen dicts."""
    try:
        from mp_api.client import MPRester
    except ImportError:
        raise DatabaseError("Materials Project needs the mp-api client: pip install "
                            "'phonion[databases]' (or pip install mp-api)") from None
    with MPRester(api_key=api_key, use_document_model=False,
                  mute_progress_bars=True) as mpr:
        docs = mpr.materials.summary.search(**query)
    return [dict(d) for d in docs]


def fetch_mp(s: DatabaseSettings, cache: Path, result: FetchResult, refresh: bool = False,
             offline: bool = False) -> list[dict]:
    """Materials Project summary documents of the query (cached)."""
    query = mp_query(s)

    def ask():
        key = os.environ.get("MP_API_KEY", "").strip()
        if not key:
            raise DatabaseError(
                "MP_API_KEY is not set: export MP_API_KEY=<your key from "
                "https://next-gen.materialsproject.org/api> (never put it in a file of the "
                "campaign), or fetch from OQMD only (--source oqmd)")
        try:
            return mp_search(key, query)
        except DatabaseError:
            raise
        except Exception as exc:  # noqa: BLE001 - the client raises anything on a failure
            raise DatabaseError(f"Materials Project query failed ({_one_line(exc, key)}): "
                                "check the network and MP_API_KEY; a cached query needs "
                                "neither") from None

    return cached(cache, "mp", query, ask, refresh, offline, result)


def mp_entry(doc: dict) -> tuple[str, Any, dict]:
    """(id, structure, properties) of a Materials Project summary document."""
    from pymatgen.core import Structure

    mid = str(doc["material_id"])
    struct = doc["structure"]
    struct = struct if isinstance(struct, Structure) else Structure.from_dict(struct)
    return mid, struct, {"band_gap_eV": doc.get("band_gap"),
                         "formation_energy_eV_atom": doc.get("formation_energy_per_atom"),
                         "e_above_hull_eV_atom": doc.get("energy_above_hull")}


# --- OQMD ---------------------------------------------------------------------------------

def oqmd_filter(s: DatabaseSettings) -> str:
    """OQMD's ``filter`` parameter for the settings."""
    parts = [f"element_set={s.mobile_ion}", f"band_gap>{s.band_gap_min_eV:g}",
             f"delta_e<{s.formation_energy_max_eV_atom:g}", f"natoms<={s.max_atoms}"]
    if s.e_hull_max_eV_atom is not None:
        parts.append(f"stability<={s.e_hull_max_eV_atom:g}")
    if s.min_elements > 1:
        parts.append(f"ntypes>={s.min_elements}")
    if s.max_elements is not None:
        parts.append(f"ntypes<={s.max_elements}")
    return " AND ".join(parts)


def http_get_json(url: str, timeout_s: float) -> dict:
    """GET ``url`` and decode its JSON body (the one network call of OQMD)."""
    request = urllib.request.Request(url, headers={"User-Agent": "phonion-fetch",
                                                   "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
        return json.loads(response.read().decode())


def fetch_oqmd(s: DatabaseSettings, cache: Path, result: FetchResult, refresh: bool = False,
               offline: bool = False) -> list[dict]:
    """Every ``data`` row of the OQMD query, page by page (``limit``/``offset``), each page
    cached as it arrives."""
    rows: list[dict] = []
    offset = 0
    for _ in range(100_000):
        params = {"filter": oqmd_filter(s), "fields": ",".join(OQMD_FIELDS),
                  "limit": s.oqmd_page_size, "offset": offset}
        url = f"{s.oqmd_url}?{urllib.parse.urlencode(params)}"

        def ask(url=url):
            try:
                return http_get_json(url, s.timeout_s)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                raise DatabaseError(f"OQMD query failed at {s.oqmd_url} "
                                    f"({_one_line(exc)}): check the network (the "
                                    "campaign's SLURM jobs never ask: they read "
                                    "structures.tsv)") from None

        page = cached(cache, "oqmd", {"url": s.oqmd_url, **params}, ask, refresh, offline,
                      result)
        data = page.get("data") if isinstance(page, dict) else None
        if not isinstance(data, list):
            raise DatabaseError(f"OQMD answered without a 'data' list at offset {offset} "
                                f"({str(page)[:120]})")
        rows += data
        meta, links = page.get("meta") or {}, page.get("links") or {}
        more = meta.get("more_data_available", bool(links.get("next")))
        if not data or not more:
            return rows
        offset += len(data)
    raise DatabaseError("OQMD pagination did not end")  # pragma: no cover


def oqmd_entry(row: dict) -> tuple[str, Any, dict]:
    """(id, structure, properties) of an OQMD ``data`` row: ``unit_cell`` (Å, rows are
    lattice vectors) and ``sites`` ("Na @ 0 0 0", fractional coordinates)."""
    from pymatgen.core import Lattice, Structure

    species, coords = [], []
    for site in row["sites"]:
        element, _, xyz = site.partition("@")
        species.append(element.strip())
        coords.append([float(x) for x in xyz.split()])
    struct = Structure(Lattice(row["unit_cell"]), species, coords)
    return str(row["entry_id"]), struct, {"band_gap_eV": row.get("band_gap"),
                                          "formation_energy_eV_atom": row.get("delta_e"),
                                          "e_above_hull_eV_atom": row.get("stability")}


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


def _one_line(exc: BaseException, secret: str = "") -> str:
    text = " ".join(str(exc).split())
    if secret:
        text = text.replace(secret, "***")
    if len(text) > 200:
        text = text[:200] + " …"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
