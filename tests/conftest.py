"""Suite-wide fixtures and Hypothesis profiles.

Profiles: ``dev`` (default, 100 examples), ``ci`` (derandomized, so a red CI is reproducible), chosen
with ``HYPOTHESIS_PROFILE`` or automatically when ``CI=true``.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100)
settings.register_profile(
    "ci", max_examples=200, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") == "true" else "dev")
)
