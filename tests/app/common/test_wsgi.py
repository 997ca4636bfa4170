"""The WSGI module loads what requests need and freezes it out of the garbage collector's sight."""

from __future__ import annotations

import os
import subprocess
import sys

CHECK = """
import gc, sys
import prorata.wsgi
assert callable(prorata.wsgi.application)
assert "prorata.urls" in sys.modules and "prorata.api.v1" in sys.modules
print(gc.get_freeze_count(), len(gc.get_objects()))
"""


def test_the_application_starts_with_its_modules_frozen() -> None:
    # In a child process: freezing the test process's own objects is not the test's business.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "prorata.settings.test"}
    output = subprocess.run(  # noqa: S603
        [sys.executable, "-c", CHECK], env=env, check=True, capture_output=True, text=True,
        timeout=120,
    ).stdout
    frozen, tracked = (int(n) for n in output.split())
    assert frozen > 10 * tracked  # the start-up objects are frozen; only a handful are not
