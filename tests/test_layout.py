"""The layout's rules (ARCHITECTURE.md, Layout), checked on a static import graph.

Every ``import`` and ``from ... import`` in the project's own modules is read with ``ast``
(nothing is imported to find them), at any depth: an import inside a function runs too, just
later. The cycle rule counts only module-level imports, which run while a module loads and
are what can leave one half-initialised. Imports under ``if TYPE_CHECKING:`` never run and
are left out of both. Imports spelled as strings (``importlib``, Celery task names) are not
seen.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGES = ("sttproject", "transcription", "keywords", "workers", "bench", "tests")
MAX_LINES = 500
# Folders whose modules may be long: tests and benchmarks are read top to bottom, and
# migrations are generated.
LONG_ALLOWED = ("tests/", "bench/")


@dataclass(frozen=True)
class Import:
    names: tuple[str, ...]  # every dotted name the statement can mean
    line: int
    module_level: bool


def module_name(path: Path, root: Path = REPO_ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path = REPO_ROOT) -> dict[str, Path]:
    modules = {module_name(path, root): path for path in sorted(root.glob("*.py"))}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            modules[module_name(path, root)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, module_level: bool) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            # Only the else branch ever runs.
            for statement in child.orelse:
                yield statement, module_level
                yield from _walk(statement, module_level)
            continue
        yield child, module_level
        inner = module_level and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
        yield from _walk(child, inner)


def imports_of(source: str, module: str, is_package: bool = False) -> list[Import]:
    """The imports of ``module`` (its source given), relative ones made absolute."""
    found = []
    for node, module_level in _walk(ast.parse(source), True):
        if isinstance(node, ast.Import):
            names = tuple(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from a import b`` means the module a.b if there is one, else a name in a.
            names = (base, *(f"{base}.{alias.name}" for alias in node.names))
        else:
            continue
        found.append(Import(names, node.lineno, module_level))
    return found


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def resolve(name: str, modules: Iterable[str]) -> str | None:
    """The project module ``name`` loads: itself, or the longest project module above it."""
    known = set(modules)
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


@pytest.fixture(scope="module")
def graph() -> dict[str, list[Import]]:
    modules = project_modules()
    return {
        name: imports_of(path.read_text(), name, path.name == "__init__.py")
        for name, path in modules.items()
    }


def forbidden_imports(
    graph: dict[str, list[Import]], room: str, forbidden: Iterable[str]
) -> list[str]:
    forbidden = tuple(forbidden)
    found = []
    for module, imports in graph.items():
        if not _matches(module, room):
            continue
        for imp in imports:
            hits = [n for n in imp.names if any(_matches(n, bad) for bad in forbidden)]
            if hits:
                found.append(f"{module}:{imp.line} imports {min(hits, key=len)}")
    return found


def module_level_edges(graph: dict[str, list[Import]]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {module: set() for module in graph}
    for module, imports in graph.items():
        for imp in imports:
            if not imp.module_level:
                continue
            for name in imp.names:
                target = resolve(name, graph)
                if target is not None and target != module:
                    edges[module].add(target)
    return edges


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components with more than one module: each holds an import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return components


def path_between(edges: dict[str, set[str]], start: str, goal: str, within: set[str]) -> list[str]:
    """A shortest import path from ``start`` to ``goal`` inside one component."""
    previous: dict[str, str] = {}
    frontier = [start]
    seen = {start}
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(edges[node] & within):
                if target in seen:
                    continue
                seen.add(target)
                previous[target] = node
                following.append(target)
        frontier = following
    path = [goal]
    while path[-1] != start:
        path.append(previous[path[-1]])
    return path[::-1]


# --- the rules -------------------------------------------------------------------------------


def test_speech_knows_nothing_of_the_web_live_sessions_or_redis(graph):
    bad = forbidden_imports(
        graph,
        "transcription.speech",
        ("transcription.web", "transcription.live", "redis", "django.http"),
    )
    assert bad == [], "transcription/speech/ is worker-side compute:\n" + "\n".join(bad)


def test_the_web_never_calls_the_live_worker(graph):
    bad = forbidden_imports(graph, "transcription.web", ("transcription.live.worker",))
    assert bad == [], "transcription/web/ calls batch/ and search/, never:\n" + "\n".join(bad)


def test_no_import_cycle_runs_through_keywords_and_transcription(graph):
    edges = module_level_edges(graph)
    cycles = []
    for component in strongly_connected(edges):
        members = set(component)
        keyword_side = [m for m in component if _matches(m, "keywords")]
        transcription_side = [m for m in component if _matches(m, "transcription")]
        if keyword_side and transcription_side:
            there = path_between(edges, keyword_side[0], transcription_side[0], members)
            back = path_between(edges, transcription_side[0], keyword_side[0], members)
            cycles.append(" -> ".join(there + back[1:]))
    assert cycles == [], "module-level import cycles through both apps:\n" + "\n".join(cycles)


def test_no_module_is_over_500_lines():
    long = []
    for path in project_modules().values():
        relative = path.relative_to(REPO_ROOT).as_posix()
        if relative.startswith(LONG_ALLOWED) or "/migrations/" in relative:
            continue
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            long.append(f"{relative}: {lines} lines")
    assert long == [], f"modules over {MAX_LINES} lines; split them by role:\n" + "\n".join(long)


# --- the checker itself ---------------------------------------------------------------------


def test_imports_are_found_at_every_depth_and_made_absolute():
    source = """
from __future__ import annotations
import redis
from typing import TYPE_CHECKING
from . import engine
from ..live import worker as w
from .audio import decode

if TYPE_CHECKING:
    from transcription.web import api

class Model:
    from django.http import HttpResponse

def late():
    import transcription.web.pages
"""
    imports = imports_of(source, "transcription.speech.filters")
    by_name = {name: imp for imp in imports for name in imp.names}
    assert by_name["redis"].module_level
    assert "transcription.speech.engine" in by_name
    assert "transcription.live.worker" in by_name
    assert "transcription.speech.audio.decode" in by_name
    assert by_name["django.http"].module_level  # a class body runs at import
    assert not by_name["transcription.web.pages"].module_level
    assert "transcription.web.api" not in by_name  # never runs
    # In a package's __init__, "." is the package itself.
    init = imports_of("from .query import search", "transcription.search", is_package=True)
    assert "transcription.search.query" in init[0].names


def test_cycles_are_found_only_through_module_level_imports():
    graph = {
        "keywords.services": [Import(("transcription.models",), 1, True)],
        "transcription.models": [Import(("transcription.tasks",), 1, True)],
        "transcription.tasks": [
            Import(("keywords", "keywords.services"), 1, True),
            Import(("keywords.tasks",), 9, False),
        ],
        "keywords.tasks": [Import(("transcription.tasks",), 1, True)],
        "keywords": [],
    }
    edges = module_level_edges(graph)
    assert strongly_connected(edges) == [
        ["keywords.services", "transcription.models", "transcription.tasks"]
    ]
    members = set(strongly_connected(edges)[0])
    assert path_between(edges, "keywords.services", "transcription.tasks", members) == [
        "keywords.services",
        "transcription.models",
        "transcription.tasks",
    ]
    assert resolve("transcription.models.Segment", graph) == "transcription.models"
    assert resolve("django.db", graph) is None


def test_forbidden_imports_are_named_with_their_line():
    graph = {
        "transcription.speech.engine": imports_of(
            "import numpy\n\ndef f():\n    from django import http\n", "transcription.speech.engine"
        ),
        "transcription.batch.pipeline": imports_of(
            "import redis\n", "transcription.batch.pipeline"
        ),
    }
    assert forbidden_imports(graph, "transcription.speech", ("redis", "django.http")) == [
        "transcription.speech.engine:4 imports django.http"
    ]
