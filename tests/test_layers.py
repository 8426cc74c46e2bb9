"""The layer rules (docs/architecture.md), checked on the imports of every module.

web (views, API views) → services → engine (workers/qa, llm, documents, scope, writing);
the engine imports neither Django nor ``apps``; nothing under ``workers`` imports ``apps``
(so no cycle between the two); the LLM backends (``workers/llm``) import no strategy or
ingest package; and no cycle between modules. Imports are read with ``ast``, function-local
ones included, so an import tucked into a function to dodge a cycle still counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("apps", "workers")
ENGINE = ("workers.qa", "workers.llm", "workers.documents", "workers.scope", "workers.writing")
# What a backend must not reach for: the strategies built on it, and ingest.
ABOVE_BACKENDS = ("workers.qa", "workers.scope", "workers.writing", "workers.documents")
BACKENDS = ("workers.llm",)


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def import_statements(source: str, module: str,
                      is_package: bool = False) -> list[tuple[str, tuple[str, ...]]]:
    """(absolute module, names taken from it) for every import in a module's source,
    anywhere in it: ``import a.b`` → ("a.b", ()), ``from .c import d`` → ("pkg.c", ("d",))."""
    found = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            found.append((stem, tuple(alias.name for alias in node.names)))
    return found


def imports_of(source: str, module: str, is_package: bool = False) -> set[str]:
    """Absolute names a module imports (``from a import b`` gives ``a`` and ``a.b``: ``b``
    may be a submodule)."""
    return {name for stem, taken in import_statements(source, module, is_package)
            for name in (stem, *(f"{stem}.{t}" for t in taken))}


def project_imports(root: Path = ROOT) -> dict[str, set[str]]:
    """{module: absolute names it imports} for every module of the project's packages."""
    graph = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            module = ".".join(parts[:-1] if is_package else parts)
            graph[module] = imports_of(path.read_text(encoding="utf-8"), module, is_package)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles between the graph's own modules (strongly connected components, Tarjan).

    A module importing its own package (``from . import register``, a name the package's
    ``__init__`` re-exports) is how a package exposes its parts: that edge is left out."""
    edges = {m: sorted(n for n in names if n in graph and n != m and not m.startswith(n + "."))
             for m, names in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(m: str) -> None:
        index[m] = low[m] = len(index)
        stack.append(m)
        on_stack.add(m)
        for n in edges[m]:
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in on_stack:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            component = []
            while True:
                n = stack.pop()
                on_stack.discard(n)
                component.append(n)
                if n == m:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for m in sorted(edges):
        if m not in index:
            visit(m)
    return found


def violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, names in sorted(graph.items()):
        for name in sorted(names):
            if _under(module, ENGINE) and _under(name, ("django",)):
                found.append(f"{module} imports {name}: the engine imports no Django")
            if _under(module, ("workers",)) and _under(name, ("apps",)):
                found.append(f"{module} imports {name}: nothing under workers imports apps")
            if _under(module, BACKENDS) and _under(name, ABOVE_BACKENDS):
                found.append(f"{module} imports {name}: a backend imports no strategy")
    found.extend("import cycle: " + " → ".join(cycle) for cycle in _cycles(graph))
    return found


def test_the_project_keeps_the_layer_rules():
    graph = project_imports()
    assert len(graph) > 100 and "workers.qa.engine" in graph and "apps.jobs.tasks" in graph
    assert violations(graph) == []


def test_apps_depend_on_workers_and_never_the_reverse():
    graph = project_imports()
    apps_to_workers = {n for m, names in graph.items() if m.startswith("apps.")
                       for n in names if _under(n, ("workers",))}
    workers_to_apps = {n for m, names in graph.items() if m.startswith("workers.")
                       for n in names if _under(n, ("apps",))}
    assert "workers.qa.engine" in apps_to_workers and workers_to_apps == set()


def test_function_local_imports_count():
    source = "import json\n\ndef run():\n    from apps.jobs import services\n    import django.db\n"
    names = imports_of(source, "workers.qa.sneaky")
    assert {"apps.jobs", "apps.jobs.services", "django.db"} <= names


def test_relative_imports_resolve_to_absolute_names():
    assert imports_of("from .types import Answer\nfrom ..llm import get_backend\n",
                      "workers.qa.engine") >= {"workers.qa.types", "workers.llm.get_backend"}
    assert "workers.qa.engine" in imports_of("from .engine import answer\n", "workers.qa",
                                             is_package=True)


def test_the_checker_catches_each_broken_rule():
    """A known-bad module set: every rule is reported, and a clean set passes."""
    bad = {
        "workers.qa.engine": {"django.conf"},
        "workers.tasks": {"apps.jobs.services"},
        "apps.jobs.services": {"workers.tasks"},
        "workers.llm.base": {"workers.qa.prompts"},
        "workers.qa.prompts": set(),
    }
    found = violations(bad)
    assert any("workers.qa.engine imports django.conf" in v for v in found)
    assert any("workers.tasks imports apps.jobs.services" in v for v in found)
    assert any("workers.llm.base imports workers.qa.prompts" in v for v in found)
    assert "import cycle: apps.jobs.services → workers.tasks" in found
    clean = {"apps.jobs.services": {"workers.celery", "django.db"}, "workers.celery": set(),
             "workers.qa": {"workers.qa.engine"}, "workers.qa.engine": {"workers.qa"}}
    assert violations(clean) == []
