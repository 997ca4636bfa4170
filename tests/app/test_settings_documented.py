"""Every environment variable the code reads is in docs/settings.md, and the table lists nothing
that nothing reads; .env.example sets only documented variables; the production settings pass
Django's deployment checks (issue 15)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Calls that read one variable named by their first argument (the settings' helpers included).
READERS = {"get", "getenv", "_flag", "_seconds"}


def _reads(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            environ = isinstance(func, ast.Attribute) and "environ" in ast.unparse(func.value)
            if (name == "get" and environ) or name in READERS - {"get"}:
                names.add(node.args[0].value)
        elif (isinstance(node, ast.Subscript) and "environ" in ast.unparse(node.value)
              and isinstance(node.slice, ast.Constant)):
            names.add(node.slice.value)
    return {name for name in names if isinstance(name, str)}


def environment_read() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "src").rglob("*.py"):
        names |= _reads(ast.parse(path.read_text(), str(path)))
    return names


def documented() -> set[str]:
    text = (ROOT / "docs" / "settings.md").read_text()
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", text, re.M))


def test_every_variable_the_code_reads_is_documented_and_nothing_else():
    read = {name for name in environment_read()
            if name.startswith("PRORATA_") or name == "DATABASE_URL"}
    assert "PRORATA_SECRET_KEY" in read and "PRORATA_SMTP_HOST" in read  # the scan finds reads
    assert read - documented() == set(), "add these to docs/settings.md"
    assert documented() - read == set(), "docs/settings.md lists variables nothing reads"


def test_the_scan_finds_each_way_of_reading_a_variable():
    source = ('os.environ.get("A")\nos.environ["B"]\nos.getenv("C")\n_flag("D")\n'
              '_seconds("E", 5)\ngetattr(settings, "F")\nos.environ.setdefault("G", "")\n')
    assert _reads(ast.parse(source)) == {"A", "B", "C", "D", "E"}


def _example() -> dict[str, str]:
    """The variables of .env.example as systemd's EnvironmentFile= reads them: one quoted value loses
    its quotes, and nothing is escaped inside single quotes."""
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            value = value.strip()
            if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[name.strip()] = value
    return values


def test_sh_reads_env_example_as_systemd_does():
    """docs/deploy.md runs the commands with `set -a; . prorata.env`: a value with a space or a
    `<` unquoted would run as a command or a redirection there, and differ from systemd's."""
    result = subprocess.run(  # noqa: S603  # fixed arguments
        ["/bin/sh", "-c", 'set -a; . "$1"; set +a; exec env -0', "sh", str(ROOT / ".env.example")],
        env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    seen = dict(item.partition("=")[::2] for item in result.stdout.split("\0") if item)
    example = _example()
    assert {name: seen.get(name) for name in example} == example
    assert example["PRORATA_FROM_EMAIL"] == "Prorata Billing <billing@example.com>"


def test_env_example_sets_only_documented_variables():
    example = _example()
    assert {"DATABASE_URL", "PRORATA_SECRET_KEY", "PRORATA_ALLOWED_HOSTS", "PRORATA_BASE_URL",
            "PRORATA_HTTPS", "PRORATA_SMTP_HOST"} <= set(example)
    assert set(example) - documented() == set()


def test_check_deploy_is_clean_with_the_production_settings(tmp_path):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PRORATA_", "DJANGO_"))}
    env |= _example() | {
        "PRORATA_SECRET_KEY": "x7-" + "k" * 20 + "Qz9-v" * 8,  # what the operator generates
        "PRORATA_VAR_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "DJANGO_SETTINGS_MODULE": "prorata.settings.base",
    }
    result = subprocess.run(
        [sys.executable, "-m", "prorata.cli", "check", "--deploy", "--fail-level", "WARNING"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
