"""What the database steps share: the sources, the table columns, the settings
(``databases`` in config), an entry, the result of a fetch, and the one-line error."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import ConfigError, PhonionError

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


def _one_line(exc: BaseException, secret: str = "") -> str:
    text = " ".join(str(exc).split())
    if secret:
        text = text.replace(secret, "***")
    if len(text) > 200:
        text = text[:200] + " …"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
