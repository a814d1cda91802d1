"""Database intake (phonion.databases): Materials Project and OQMD from recorded responses
(tests/data/databases, never a live query), filters, pagination, the cache used offline,
deduplication within and across sources, the MP_API_KEY error, the table read by intake."""

from __future__ import annotations

import ast
import copy
import csv
import importlib.util
import json
import sys
import types
import urllib.error
import urllib.parse
from pathlib import Path

import pytest
import yaml

from phonion import databases
from phonion.cli import main
from phonion.databases import DatabaseError, DatabaseSettings, fetch
from phonion.intake import discover

from conftest import ROOT

DATA = ROOT / "tests" / "data" / "databases"
KEY = "test-key-0123456789abcdef"


class FakeSummary:
    """``MPRester().materials.summary``: ``search`` returns the recorded documents."""

    calls: list[dict] = []

    def search(self, **query):
        FakeSummary.calls.append(query)
        return json.loads((DATA / "mp_summary_search.json").read_text())


class FakeMPRester:
    """The mp-api client, no network: records the key and the query it is given."""

    keys: list[str] = []

    def __init__(self, api_key=None, **kwargs):
        FakeMPRester.keys.append(api_key)
        self.materials = types.SimpleNamespace(summary=FakeSummary())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def oqmd_page(url: str, timeout_s: float) -> dict:
    """The recorded OQMD page for the offset in ``url``."""
    query = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
    oqmd_page.calls.append(query)
    return json.loads((DATA / f"oqmd_page_offset{query['offset'][0]}.json").read_text())


oqmd_page.calls = []


@pytest.fixture
def recorded(monkeypatch):
    """mp-api and the OQMD HTTP call answer from tests/data/databases."""
    client = types.ModuleType("mp_api.client")
    client.MPRester = FakeMPRester
    monkeypatch.setitem(sys.modules, "mp_api", types.ModuleType("mp_api"))
    monkeypatch.setitem(sys.modules, "mp_api.client", client)
    monkeypatch.setattr(databases.sources, "http_get_json", oqmd_page)
    monkeypatch.setenv("MP_API_KEY", KEY)
    FakeSummary.calls.clear()
    FakeMPRester.keys.clear()
    oqmd_page.calls.clear()


def no_network(*args, **kwargs):
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


def settings(tmp_path: Path, **kw) -> DatabaseSettings:
    return DatabaseSettings(output=str(tmp_path / "db"), cache=str(tmp_path / "cache"),
                            oqmd_page_size=2, **kw)


def read_tsv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_fetch_filters_paginates_deduplicates_and_writes_the_table(tmp_path, recorded):
    s = settings(tmp_path)
    result = fetch(s)

    # the query asked each database for the seed filters
    (mp_query,) = FakeSummary.calls
    assert mp_query["elements"] == ["Na"]
    assert mp_query["band_gap"][0] > 0 and mp_query["formation_energy"][1] == 0.0
    assert mp_query["num_sites"] == (1, 64) and "energy_above_hull" not in mp_query
    assert FakeMPRester.keys == [KEY]
    # OQMD: both pages followed (offset 0, then 2), filter in OQMD's syntax
    assert [q["offset"] for q in oqmd_page.calls] == [["0"], ["2"]]
    flt = oqmd_page.calls[0]["filter"][0]
    assert "element_set=Na" in flt and "band_gap>0" in flt and "delta_e<0" in flt
    assert "natoms<=64" in flt

    out = tmp_path / "db"
    table = read_tsv(out / "structures.tsv")
    assert list(table[0]) == list(databases.TABLE_COLUMNS)
    by_id = {r["id"]: r for r in table}
    assert sorted(by_id) == ["mp-22862", "mp-2352", "oqmd-4393", "oqmd-4513"]
    assert by_id["oqmd-4513"] == {
        "id": "oqmd-4513", "path": "structures/oqmd-4513.cif", "source": "oqmd",
        "database_id": "4513", "formula": "Na2S", "band_gap_eV": "2.563",
        "formation_energy_eV_atom": "-1.292", "e_above_hull_eV_atom": "0"}
    assert by_id["mp-22862"]["source"] == "mp" and by_id["mp-22862"]["formula"] == "NaCl"

    # duplicates: the strained MP NaCl (within MP) and OQMD's NaCl (across sources)
    dups = {r["dropped_id"]: r for r in read_tsv(out / "duplicates.tsv")}
    assert set(dups) == {"mp-1185319", "oqmd-18"}
    assert dups["mp-1185319"]["kept_id"] == "mp-22862"
    assert "lower E_hull" in dups["mp-1185319"]["reason"]
    assert dups["oqmd-18"]["kept_id"] == "mp-22862"
    assert "Materials Project before OQMD" in dups["oqmd-18"]["reason"]
    assert "StructureMatcher ltol=0.2, stol=0.3, angle_tol=5.0" in dups["oqmd-18"]["reason"]

    # rejected: no mobile ion, zero band gap (in either source)
    rejected = {r["id"]: r["reason"] for r in read_tsv(out / "rejected.tsv")}
    assert rejected["mp-23193"].startswith("no mobile ion Na (contains Cl, K)")
    assert rejected["mp-7956"].startswith("band gap 0.0 eV")
    assert rejected["oqmd-20125"].startswith("band gap 0.0 eV")
    assert len(result.kept) == 4 and result.queried == {"mp": 1, "oqmd": 2}

    # the CIFs are what the campaign reads: the intake table lists them
    found = discover(table=out / "structures.tsv")
    assert sorted(found.materials) == sorted(by_id) and not found.rejected
    assert found.columns["oqmd-4513"]["source"] == "oqmd"
    assert found.columns["oqmd-4513"]["database_id"] == "4513"
    plain = tmp_path / "plain.tsv"  # a table without a header has no extra columns
    plain.write_text("NaF\tdb/structures/oqmd-4393.cif\tignored\n")
    assert discover(table=plain).columns == {} and list(discover(table=plain).materials) == [
        "NaF"]
    from phonion.intake import read_structure, triage

    atoms = read_structure(found.materials["oqmd-4513"])
    assert atoms.get_chemical_formula(empirical=True) == "Na2S"
    assert len(triage(atoms)) == 3


def test_rerun_reads_the_cache_offline(tmp_path, recorded, monkeypatch):
    s = settings(tmp_path)
    fetch(s)
    first = (tmp_path / "db" / "structures.tsv").read_text()
    cache = sorted((tmp_path / "cache").iterdir())
    assert [p.name.split("-")[0] for p in cache] == ["mp", "oqmd", "oqmd"]
    record = json.loads(cache[1].read_text())
    assert record["source"] == "oqmd" and record["response"]["data"]  # the raw page

    # no network, no key: the same table from the cache
    monkeypatch.setattr(databases.sources, "http_get_json", no_network)
    monkeypatch.setitem(sys.modules, "mp_api.client", None)
    monkeypatch.delenv("MP_API_KEY")
    (tmp_path / "db" / "structures.tsv").unlink()
    result = fetch(s, offline=True)
    assert (tmp_path / "db" / "structures.tsv").read_text() == first
    assert result.queried == {} and result.cached == {"mp": 1, "oqmd": 2}

    # another query (an E_hull cap) is not in the cache: a one-line error, no traceback
    with pytest.raises(DatabaseError, match="not in the cache"):
        fetch(settings(tmp_path, e_hull_max_eV_atom=0.01), offline=True)
    with pytest.raises(DatabaseError, match=r"OQMD query failed .*URLError.*check the network"):
        fetch(settings(tmp_path, e_hull_max_eV_atom=0.01, sources=("oqmd",)))
    # the command line: another page size is another query; --offline refuses to ask
    assert main(["fetch", "--source", "oqmd", "--offline", "--output", str(tmp_path / "x"),
                 "--cache", str(tmp_path / "cache")]) == 2


def test_cache_is_written_before_parsing(tmp_path, recorded, monkeypatch):
    """A response that cannot be parsed is still cached: the rerun needs no network."""
    def broken(raw):
        raise RuntimeError("parser bug")

    monkeypatch.setitem(databases.FETCHERS, "oqmd", (databases.fetch_oqmd, broken))
    with pytest.raises(RuntimeError, match="parser bug"):
        fetch(settings(tmp_path, sources=("oqmd",)))
    assert len(list((tmp_path / "cache").glob("oqmd-*.json"))) == 2  # both pages


def test_filters_cap_and_elements(tmp_path, recorded):
    s = settings(tmp_path, e_hull_max_eV_atom=0.01, exclude_elements=("S",))
    fetch(s)
    assert FakeSummary.calls[0]["energy_above_hull"] == (0.0, 0.01)
    assert FakeSummary.calls[0]["exclude_elements"] == ["S"]
    assert "stability<=0.01" in oqmd_page.calls[0]["filter"][0]
    rejected = {r["id"]: r["reason"] for r in read_tsv(tmp_path / "db" / "rejected.tsv")}
    assert rejected["mp-1185319"].startswith("E_hull 0.012 eV/atom > databases.e_hull_max")
    assert rejected["oqmd-4513"].startswith("excluded elements S")
    ids = [r["id"] for r in read_tsv(tmp_path / "db" / "structures.tsv")]
    assert ids == ["mp-22862", "mp-2352", "oqmd-4393"]

    fetch(settings(tmp_path, allowed_elements=("Cl", "F"), sources=("oqmd",)))
    ids = [r["id"] for r in read_tsv(tmp_path / "db" / "structures.tsv")]
    assert ids == ["oqmd-18", "oqmd-4393"]  # NaCl from OQMD alone is no duplicate
    assert not list((tmp_path / "db" / "structures").glob("mp-*.cif"))  # stale CIFs gone


def test_unset_key_is_one_clear_line(tmp_path, recorded, monkeypatch, capsys):
    monkeypatch.delenv("MP_API_KEY")
    with pytest.raises(DatabaseError, match="MP_API_KEY is not set: export MP_API_KEY="):
        fetch(settings(tmp_path, sources=("mp",)))
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"mobile_ion": "Na", "databases": {
        "sources": ["mp"], "output": str(tmp_path / "db"), "cache": str(tmp_path / "c")}}))
    assert main(["fetch", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("phonion fetch: MP_API_KEY is not set") and "Traceback" not in err
    assert err.count("\n") == 1


def test_command_and_the_key_in_no_file(tmp_path, recorded, capsys):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"mobile_ion": "Na", "databases": {
        "output": str(tmp_path / "db"), "cache": str(tmp_path / "cache"),
        "oqmd_page_size": 2}}))
    assert main(["fetch", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "4 structures in" in out and "2 duplicates" in out and "3 entries rejected" in out
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(errors="replace"), path
    # a typo in the section fails naming the key
    cfg.write_text(yaml.safe_dump({"databases": {"e_hul_max_eV_atom": 0.1}}))
    assert main(["fetch", "--config", str(cfg)]) == 2
    assert "e_hul_max_eV_atom" in capsys.readouterr().err


def test_mp_failure_hides_the_key(tmp_path, recorded, monkeypatch):
    def fail(self, **query):
        raise RuntimeError(f"401 Unauthorized for key {KEY}")

    monkeypatch.setattr(FakeSummary, "search", fail)
    with pytest.raises(DatabaseError) as err:
        fetch(settings(tmp_path, sources=("mp",)))
    assert KEY not in str(err.value) and "***" in str(err.value)
    assert "Materials Project query failed" in str(err.value)


def test_schema_defaults_equal_the_settings():
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    props = schema["properties"]["databases"]["properties"]
    defaults = DatabaseSettings()
    assert set(props) == {f for f in vars(defaults)} - {"mobile_ion"}
    for name, spec in props.items():
        value = getattr(defaults, name)
        assert (list(value) if isinstance(value, tuple) else value) == spec["default"], name
    validated = {"databases": {}}
    from snakemake.utils import validate

    validate(validated, str(ROOT / "workflow/schemas/config.schema.yaml"))
    assert DatabaseSettings.from_config(copy.deepcopy(validated)) == defaults


def test_mp_query_matches_the_installed_client():
    """Every keyword of the query is a parameter of mp-api's SummaryRester.search (read from
    its source: importing mp-api takes ~20 s)."""
    spec = importlib.util.find_spec("mp_api")
    if spec is None:
        pytest.skip("mp-api not installed (pip install 'phonion[databases]')")
    source = Path(spec.origin).parent / "client" / "routes" / "materials" / "summary.py"
    tree = ast.parse(source.read_text())
    search = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
                  and n.name == "search")
    params = {a.arg for a in search.args.args + search.args.kwonlyargs}
    query = databases.mp_query(DatabaseSettings(e_hull_max_eV_atom=0.05, min_elements=3,
                                                max_elements=4, exclude_elements=("H",)))
    assert set(query) <= params, set(query) - params


@pytest.mark.slow
def test_real_mp_client_builds_the_request(tmp_path, monkeypatch):
    """The installed mp-api client (importing it takes ~20 s), its HTTP calls answered from
    the recorded documents: the REST parameters it sends, and plain dicts back."""
    requests = pytest.importorskip("requests")
    if importlib.util.find_spec("mp_api") is None:
        pytest.skip("mp-api not installed (pip install 'phonion[databases]')")
    sent = []

    class Response:
        status_code, ok, headers = 200, True, {}

        def __init__(self, payload):
            self.payload, self.text = payload, json.dumps(payload)
            self.content = self.text.encode()

        def json(self):
            return self.payload

        def raise_for_status(self):
            pass

    def get(url=None, *args, **kwargs):
        sent.append((str(url), kwargs.get("params")))
        if str(url).endswith("heartbeat"):
            return Response({"db_version": "2025_09_25", "version": "0.87.3",
                             "access_controlled_batch_ids": []})
        docs = json.loads((DATA / "mp_summary_search.json").read_text())
        return Response({"data": docs, "meta": {"total_doc": len(docs)}})

    monkeypatch.setattr(requests, "get", get)
    monkeypatch.setattr(requests.Session, "get", lambda self, url=None, *a, **k: get(url, **k))
    monkeypatch.setenv("MP_API_KEY", "k" * 32)
    s = DatabaseSettings(output=str(tmp_path / "db"), cache=str(tmp_path / "cache"),
                         sources=("mp",), e_hull_max_eV_atom=0.05, max_elements=4)
    result = fetch(s)
    (url, params), = [x for x in sent if "summary" in x[0]]
    assert url.endswith("/materials/summary/")
    assert params["elements"] == "Na" and params["deprecated"] is False
    assert params["band_gap_min"] > 0 and params["formation_energy_per_atom_max"] == 0.0
    assert params["energy_above_hull_max"] == 0.05 and params["nsites_max"] == 64
    assert params["nelements_max"] == 4
    assert params["_fields"].split(",") == list(databases.MP_FIELDS)
    assert [e.id for e in result.kept] == ["mp-22862", "mp-2352"]
