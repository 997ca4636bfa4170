"""prorata_core imports only the standard library, python-stdnum and itself (STYLE: a pure core)."""

import ast
import sys
from pathlib import Path

import prorata_core

ALLOWED = set(sys.stdlib_module_names) | {"stdnum", "prorata_core"}


def imported_roots(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def test_core_imports_nothing_from_django_or_the_project():
    files = sorted(Path(prorata_core.__file__).parent.rglob("*.py"))
    assert len(files) >= 8
    offending = {
        f"{path.name}: {root}"
        for path in files
        for root in imported_roots(path)
        if root not in ALLOWED
    }
    assert offending == set()


def test_the_checker_sees_a_forbidden_import(tmp_path):
    sample = tmp_path / "bad.py"
    sample.write_text("import django\nfrom prorata.common import clock\nfrom . import money\n")
    assert [r for r in imported_roots(sample) if r not in ALLOWED] == ["django", "prorata"]
