"""Settings for the test suite: movable clock, fast hashing, mail kept in memory."""

import os

os.environ.setdefault("PRORATA_CLOCK", "movable")
# Each test process counts its own metrics (no files shared between the test runner's workers).
os.environ.setdefault("PRORATA_METRICS_DIR", "")

from prorata.settings.base import *  # noqa: F403

PRORATA_CLOCK = "movable"
# Tests create many users; argon2's deliberate cost would dominate the suite.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# The billing run's worker processes would open the configured database, not the test one:
# the tests that want them set DATABASE_URL to the test database and ask for them.
PRORATA_BILL_RUN_WORKERS = 1
