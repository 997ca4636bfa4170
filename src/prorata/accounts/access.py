"""What one request has already read about who may do what: the request-scoped cache of
:mod:`prorata.accounts.permissions`.

Every page and endpoint asks :func:`~prorata.accounts.permissions.account_for` first, and a page
then asks :func:`~prorata.accounts.permissions.can` again for each button it shows; the answers
come from the same few rows (the caller's membership of the account, a staff user's groups). A
:class:`RequestAccess` keeps those rows for the length of one request, so that each is read once.

:class:`RequestAccessMiddleware` opens one per request (``request.access``) and makes it the
current one for the request's code (:func:`current_access`); it is dropped when the response is
made, so nothing read in one request is seen by the next. Code that runs outside a request (jobs,
commands, tests calling services directly) has no current one and reads the rows every time,
unless it opens a scope itself with :func:`access_scope` (the benchmarks do, to measure what a
request costs).

Keys include the user's id: a request that acts for several users (the test client, a staff
action naming a customer) never sees one user's answers for another's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.http import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from prorata.accounts.models import Account, Membership


@dataclass(slots=True)
class RequestAccess:
    """The rows this request has read for authorization, keyed by user id (and account id)."""

    #: (user id, account id) → the user's membership of the account, or None for "not a member".
    memberships: dict[tuple[int, int], Membership | None] = field(default_factory=dict)
    #: (user id, account id) → the account, for accounts read together with the membership
    #: (the API token's query reads every account of its user at once).
    accounts: dict[tuple[int, int], Account] = field(default_factory=dict)
    #: user id → the staff user's roles (group names).
    staff_roles: dict[int, frozenset[str]] = field(default_factory=dict)


_current: ContextVar[RequestAccess | None] = ContextVar("prorata_request_access", default=None)


def current_access() -> RequestAccess | None:
    """The current request's :class:`RequestAccess`, or None outside a request."""
    return _current.get()


def membership_changed(user_id: int, account_id: int) -> None:
    """Forget what the current request read of this membership (the service that changes a
    membership calls it, so that the rest of the request sees the change)."""
    access = _current.get()
    if access is not None:
        access.memberships.pop((user_id, account_id), None)
        access.accounts.pop((user_id, account_id), None)


@contextmanager
def access_scope() -> Iterator[RequestAccess]:
    """Make a fresh :class:`RequestAccess` current until the block ends (the middleware's body)."""
    access = RequestAccess()
    token = _current.set(access)
    try:
        yield access
    finally:
        _current.reset(token)


class RequestAccessMiddleware:
    """Gives each request its own :class:`RequestAccess` (``request.access``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with access_scope() as access:
            request.access = access  # type: ignore[attr-defined]
            return self.get_response(request)
