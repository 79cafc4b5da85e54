"""Every public class says what it is and what it takes: a class docstring, and each argument of
``__init__`` (or each field of a dataclass) named in it, under ``Args:`` or ``Attributes:``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted(p for package in ("weightspace", "model_zoo")
               for p in (ROOT / package).rglob("*.py"))


def arguments(cls: ast.ClassDef) -> list[str]:
    """The names a user passes: ``__init__``'s parameters, else the annotated fields."""
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            a = node.args
            return [x.arg for x in (*a.posonlyargs, *a.args[1:], *a.kwonlyargs)]
    return [n.target.id for n in cls.body
            if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]


def undocumented(path: Path) -> list[str]:
    problems = []
    for cls in ast.parse(path.read_text()).body:
        if not isinstance(cls, ast.ClassDef) or cls.name.startswith("_"):
            continue
        doc = ast.get_docstring(cls)
        where = f"{path.relative_to(ROOT)}:{cls.lineno} {cls.name}"
        if not doc:
            problems.append(f"{where}: no docstring")
            continue
        names = arguments(cls)
        if names and "args:" not in doc.lower() and "attributes:" not in doc.lower():
            problems.append(f"{where}: no Args: section")
        missing = [n for n in names if n not in doc]
        if missing:
            problems.append(f"{where}: arguments not documented: {', '.join(missing)}")
    return problems


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_public_classes_document_their_arguments(path):
    assert not undocumented(path), "\n".join(undocumented(path))


def test_the_check_catches_a_missing_argument(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('class A:\n    """A thing.\n\n    Args:\n        x: one.\n    """\n\n'
                   '    def __init__(self, x, y):\n        pass\n\nclass B:\n    pass\n')
    global ROOT
    root, ROOT = ROOT, tmp_path
    try:
        problems = undocumented(bad)
    finally:
        ROOT = root
    assert problems == ["bad.py:1 A: arguments not documented: y", "bad.py:11 B: no docstring"]
