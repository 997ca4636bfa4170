"""The reliability suite (issue 18): every test here is marked ``reliability`` and ends with the
shared invariants (:func:`tests.reliability.invariants.check_all`) checked on its database.

A test that breaks the database on purpose (the checker's own tests) does it inside a savepoint
that it rolls back, so the check after it still sees a sound database.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.conftest import Clock, clock, demo_catalog  # noqa: F401  (fixtures shared)
from tests.reliability.invariants import assert_invariants
from tests.reliability.processes import shared_database  # noqa: F401  (fixture shared)

_HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every test of this directory carries the marker (`-m reliability`, `make reliability`),
    # before `-m` selects (tryfirst).
    for item in items:
        if _HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.reliability)


#: The fixtures through which a test uses the database (directly or through its own fixtures).
_DATABASE_FIXTURES = {"db", "transactional_db", "live_server", "shared_database"}


@pytest.fixture(autouse=True)
def _invariants_after(request: pytest.FixtureRequest):
    """Check I1-I6 and I11 once the test is over, on the database it used (taken here, before the
    test body, so that it is still open at teardown). A test that uses no database is left
    without one: pytest-django creates only the tables the collected tests ask for, so run alone
    such a test would end with "no such table"."""
    names = request.fixturenames
    if request.node.get_closest_marker("django_db") is None and not _DATABASE_FIXTURES & set(names):
        yield
        return
    if "transactional_db" in names or "live_server" in names or "shared_database" in names:
        request.getfixturevalue("transactional_db")
        if "shared_database" in names:  # checked on the file the test's processes shared
            request.getfixturevalue("shared_database")
    else:
        request.getfixturevalue("db")
    yield
    assert_invariants()
