"""Suite-wide fixtures and Hypothesis profiles.

Profiles: ``dev`` (default, 100 examples), ``ci`` (derandomized, so a red CI is reproducible), chosen
with ``HYPOTHESIS_PROFILE`` or automatically when ``CI=true``. Neither has a deadline: tests check
behaviour, not timings, and on a loaded machine one example can take longer than Hypothesis's
default 200 ms (two property tests failed that way beside eight busy agents).
"""

import os

import pytest
from django.conf import settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

hypothesis_settings.register_profile("dev", max_examples=100, deadline=None)
hypothesis_settings.register_profile(
    "ci", max_examples=200, derandomize=True, suppress_health_check=[HealthCheck.too_slow],
    deadline=None,
)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") == "true" else "dev")
)


@pytest.fixture(autouse=True)
def _english_between_tests():
    """Each test starts in the default language: a test that activates French (a page, an e-mail)
    must not leak it into the next test run by the same worker."""
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)
