"""No two modules of ``bali`` depend on each other, at run time or through type hints.

A circle makes the import order matter and hides which module is the lower layer; a type shared by
both sides belongs in a module below them (as ``bali.data.batch`` holds ``BaliBatch``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import bali


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, name: str, known: set[str]) -> set[str]:
    """Modules of ``known`` that ``path`` imports anywhere (functions and TYPE_CHECKING blocks too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.update(
                f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names
            )
    return (found & known) - {name}


def import_graph(root: Path) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    known = set(files)
    return {name: imported_modules(path, name, known) for name, path in files.items()}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for module in graph[todo.pop()] - seen:
            seen.add(module)
            todo.append(module)
    return seen


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Groups of modules that each reach every other one of the group through imports."""
    reach = {module: reachable(graph, module) for module in graph}
    groups: list[set[str]] = []
    for module in sorted(graph):
        if module in reach[module] and not any(module in group for group in groups):
            groups.append({other for other in reach[module] if module in reach[other]})
    return groups


def test_the_checker_finds_a_circle(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import f\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import c\n"
    )
    (package / "c.py").write_text("def g():\n    from pkg import a\n")
    (package / "d.py").write_text("import pkg.a\n")
    assert circles(import_graph(package)) == [{"pkg.a", "pkg.b", "pkg.c"}]


def test_no_module_of_bali_imports_another_that_imports_it_back() -> None:
    assert [sorted(c) for c in circles(import_graph(Path(bali.__file__).parent))] == []
