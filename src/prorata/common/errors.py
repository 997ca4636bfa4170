"""Errors of the Django project's own machinery, in the vocabulary of :mod:`prorata_core.errors`.

Business errors live in the core; these are about the project itself (its clock, its input formats).
They are :class:`~prorata_core.errors.ProrataError` subclasses so the edges map them the same way.
"""

from __future__ import annotations

from prorata_core.errors import ProrataError, ValidationError


class ClockNotMovable(ProrataError):
    """A move of the project clock while it follows the wall clock (``PRORATA_CLOCK=wall``)."""

    code = "clock_not_movable"
    http_status = 409


class InvalidDuration(ValidationError):
    """A clock step that cannot be read or is not a positive duration."""

    code = "invalid_duration"


class Busy(ProrataError):
    """A transaction that kept colliding with others (serialization failures, deadlocks) and was
    given up after a bounded number of retries. Nothing was saved; trying again is safe."""

    code = "busy"
    http_status = 503
