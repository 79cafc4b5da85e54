"""The house rules of the package structure: layers point down, no import circles (at module
level or inside functions), the library never imports the recipe package, and no file or
function grows past what one reader holds."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "weightspace"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path) -> dict[str, Path]:
    return {module_name(p): p for p in sorted(package.rglob("*.py"))}


def imported(path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that ``path`` imports anywhere (also inside functions)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found, tree = set(), ast.parse(path.read_text())
    typing_only = {id(n) for branch in ast.walk(tree) if isinstance(branch, ast.If)
                   and getattr(branch.test, "id", "") == "TYPE_CHECKING"
                   for n in ast.walk(branch)}  # annotations only: never executed
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package up
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            # `from pkg import sub` imports the submodule when there is one
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def import_graph() -> dict[str, set[str]]:
    known = {**modules(LIBRARY), **modules(ROOT / "model_zoo")}
    return {name: imported(path, known) for name, path in known.items()}


def test_no_import_circle_anywhere():
    graph = import_graph()
    # a package's __init__ re-exports its modules; a module importing a sibling through the
    # package name is the same edge as importing the sibling itself
    assert cycles(graph) == []


def test_the_cycle_finder_finds_circles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_library_never_imports_the_recipe_package():
    offenders = [str(p.relative_to(ROOT)) for p in LIBRARY.rglob("*.py")
                 if "model_zoo" in p.read_text()]
    assert offenders == []


@pytest.mark.parametrize("lower, upper", [
    ("weightspace.graph", ("weightspace.zoo", "weightspace.data", "weightspace.nn",
                           "weightspace.tasks", "weightspace.training", "weightspace.api",
                           "weightspace.testing", "weightspace.alignment")),
    ("weightspace.alignment", ("weightspace.zoo", "weightspace.nn", "weightspace.tasks",
                               "weightspace.training", "weightspace.api")),
    ("weightspace.zoo", ("weightspace.nn", "weightspace.tasks", "weightspace.training",
                         "weightspace.api")),
    ("weightspace.nn", ("weightspace.tasks", "weightspace.training", "weightspace.api",
                        "weightspace.testing")),
    ("weightspace.pruning", ("weightspace.tasks", "weightspace.training", "weightspace.api")),
    ("weightspace.hyper", ("weightspace.tasks", "weightspace.training", "weightspace.api")),
    ("weightspace.tasks", ("weightspace.training", "weightspace.api", "weightspace.cli",
                           "weightspace.generation")),
    ("weightspace.training", ("weightspace.api", "weightspace.cli", "weightspace.generation")),
    ("weightspace.generation", ("weightspace.api", "weightspace.cli")),
])
def test_layers_point_down(lower, upper):
    graph = import_graph()
    up = [(m, t) for m, targets in graph.items() if m.startswith(lower)
          for t in targets if t.startswith(upper)]
    assert up == []


def test_files_and_functions_stay_small():
    too_long = []
    for package in (LIBRARY, ROOT / "model_zoo"):
        for path in package.rglob("*.py"):
            source = path.read_text()
            if len(source.splitlines()) > 400:
                too_long.append(f"{path.relative_to(ROOT)}: {len(source.splitlines())} lines")
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = node.end_lineno - node.lineno + 1
                    if length > 80:
                        too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: "
                                        f"{length} lines")
    assert too_long == []
