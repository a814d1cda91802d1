"""The package layout that docs/design.md states, checked (issue 24): every module is at most
400 lines, no import circle (lazy imports inside functions included), nothing beneath the
command layer imports it, every relative import resolves, every stage command has its
science in the module of its name, and every test that docs/ cite exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import ROOT

SRC = ROOT / "src" / "phonion"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """phonion modules ``name`` imports anywhere (top level and inside functions)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1]
                                + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name) for name in MODULES}


def test_every_module_is_at_most_400_lines():
    long = {n: len(p.read_text().splitlines()) for n, p in MODULES.items()}
    assert {n: k for n, k in long.items() if k > MAX_LINES} == {}


def test_no_import_circle():
    """Tarjan's strongly connected components of the import graph: each one a module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert circles == []


def test_nothing_below_the_command_layer_imports_it():
    above = {n for n in MODULES if n.startswith("phonion.cli")} | {"phonion.__main__"}
    offenders = {n: sorted(GRAPH[n] & above) for n in MODULES if n not in above
                 and GRAPH[n] & above}
    assert offenders == {}


def test_every_relative_import_resolves():
    missing = []
    for name, path in MODULES.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1]
                                + ([node.module] if node.module else []))
                if base not in MODULES:
                    missing.append(f"{name}:{node.lineno} {base}")
    assert missing == []


#: Commands whose science sits in a sub-package module of another name (docs/design.md).
STAGE_MODULES = {"dft_forces": "phonion.dft.forces", "dft_relax": "phonion.dft.relax",
                 "aimd": "phonion.dft.aimd", "fetch": "phonion.databases",
                 "mlp_benchmark_table": "phonion.campaign.validation",
                 "validation_table": "phonion.campaign.validation",
                 "model": "phonion.calculators"}


def test_every_command_has_its_science_in_the_module_of_its_name():
    from phonion.cli import COMMANDS

    for command in COMMANDS:
        module = STAGE_MODULES.get(command) or (
            f"phonion.campaign.{command.removeprefix('campaign_')}"
            if command.startswith("campaign_") else f"phonion.{command}")
        assert module in MODULES, f"{command}: no module {module}"
        body = next(p for n, p in MODULES.items() if n.startswith("phonion.cli.")
                    and re.search(rf"^def {command}\(", p.read_text(), re.M))
        assert module.removeprefix("phonion.") in body.read_text().replace("..", ""), (
            f"the command {command} does not call {module}")


@pytest.mark.parametrize("doc", sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"],
                         ids=lambda p: p.name)
def test_tests_cited_in_the_docs_exist(doc):
    cited = re.findall(r"tests/(test_\w+\.py)::(test_\w+)", doc.read_text())
    for file, name in cited:
        path = ROOT / "tests" / file
        assert path.is_file(), f"{doc.name} cites {file}, which does not exist"
        assert re.search(rf"^def {name}\(", path.read_text(), re.M), (
            f"{doc.name} cites {file}::{name}, which does not exist")
