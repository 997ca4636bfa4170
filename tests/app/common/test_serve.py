"""``prorata serve``: gunicorn with one worker per core by default, graceful restarts."""

from __future__ import annotations

import os

import pytest
from django.core.management import CommandError, call_command


def test_serve_runs_gunicorn_with_a_worker_per_core_by_default(capsys, settings):
    settings.PRORATA_WEB_WORKERS = 0
    call_command("serve", "--dry-run", "--bind", "127.0.0.1:8123")
    argv = capsys.readouterr().out.split()
    assert argv[1:4] == ["-m", "gunicorn", "prorata.wsgi:application"]
    assert argv[argv.index("--workers") + 1] == str(os.cpu_count() or 1)
    assert argv[argv.index("--bind") + 1] == "127.0.0.1:8123"
    assert argv[argv.index("--graceful-timeout") + 1] == "30"


def test_serve_takes_its_worker_count_from_the_setting_or_the_option(capsys, settings):
    settings.PRORATA_WEB_WORKERS = 3
    call_command("serve", "--dry-run")
    argv = capsys.readouterr().out.split()
    assert argv[argv.index("--workers") + 1] == "3"
    call_command("serve", "--dry-run", "--workers", "5")
    argv = capsys.readouterr().out.split()
    assert argv[argv.index("--workers") + 1] == "5"


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--workers", "0", "--workers takes a count of at least 1, not 0"),
    ("--timeout", "0", "--timeout takes seconds"),
    ("--max-requests", "-1", "--max-requests takes a count"),
])
def test_serve_refuses_a_bad_option_saying_why(option, value, message):
    with pytest.raises(CommandError, match=message):
        call_command("serve", "--dry-run", option, value)
