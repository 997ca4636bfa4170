"""The systemd units in deploy/ pass ``systemd-analyze verify`` with this checkout in place of
/srv/prorata (their commands exist and are executable), and run what docs/deploy.md documents."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "deploy").glob("*.service"))


def test_the_kit_has_a_unit_for_each_process():
    assert {unit.name for unit in UNITS} == {
        "prorata-web.service", "prorata-worker.service", "prorata-celery-worker.service",
        "prorata-celery-beat.service"}
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    for unit in UNITS:
        assert unit.name in deploy


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
@pytest.mark.parametrize("unit", UNITS, ids=lambda path: path.name)
def test_each_unit_passes_systemd_analyze_verify(unit, tmp_path):
    if not (ROOT / ".venv" / "bin" / "prorata").exists():
        pytest.skip("no .venv in this checkout (make setup makes it)")
    text = unit.read_text().replace("/etc/prorata/prorata.env", str(ROOT / ".env.example"))
    text = text.replace("/srv/prorata", str(ROOT))
    (tmp_path / unit.name).write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / unit.name)],  # noqa: S603,S607
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "is not executable" not in result.stderr
