"""The two sources and their cache: Materials Project (mp-api) and OQMD (its REST API),
each raw response written to the cache before it is parsed, a cached query never asked
again."""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..formats import atomic_path
from .core import (
    MP_FIELDS,
    OQMD_FIELDS,
    SOURCE_NAMES,
    DatabaseError,
    DatabaseSettings,
    FetchResult,
    _one_line,
)


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
