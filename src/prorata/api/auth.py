"""How an API request says who it is: a personal API token, or the web session.

Both callbacks set ``request.auth_user`` (the :class:`~prorata.accounts.models.User`) — the one
attribute handlers read — and return it (ninja keeps it in ``request.auth`` too).

- :class:`BearerToken`: ``Authorization: Bearer prorata_…``. A token that is present but not valid
  answers 401 with the reason (:class:`~prorata.api.errors.InvalidApiToken`): a bad explicit
  credential is never silently replaced by the session.
- :class:`SessionCookie`: the browser's session (the API docs page, htmx). Unsafe methods need the
  CSRF token (``X-CSRFToken`` header), checked only once the session is known to be signed in, so
  that an anonymous request answers 401 rather than a CSRF 403.

Once authenticated, a NUL character anywhere in the path, query or JSON body is refused (422,
:func:`prorata.api.operator.reject_nul`) before a handler reads it. The operator API has its own
credential, :class:`prorata.api.operator.OperatorKeyAuth`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from prorata.accounts.models import User
from prorata.api.errors import CsrfFailed
from prorata.api.operator import reject_nul
from prorata.api.services import api_token_authenticate

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class ApiRequest(HttpRequest):
    """The request type API handlers annotate: an authenticated request has ``auth_user``."""

    auth_user: User


class BearerToken(HttpBearer):
    def authenticate(self, request: ApiRequest, token: str) -> User | None:
        user = api_token_authenticate(token=token)
        reject_nul(request)
        request.auth_user = user
        return user


class SessionCookie(APIKeyCookie):
    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self) -> None:
        super().__init__(csrf=True)  # also tells the docs page to send the CSRF header

    def __call__(self, request: ApiRequest) -> Any:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_active:
            return None
        exempt = getattr(request, "_ninja_csrf_exempt", False)
        if request.method not in SAFE_METHODS and not exempt and check_csrf(request) is not None:
            raise CsrfFailed(
                "This request is authenticated by the session cookie and needs the CSRF token: "
                "send it in the X-CSRFToken header (from the csrftoken cookie), or use an API token."
            )
        reject_nul(request)
        request.auth_user = user
        return user

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        """Ninja's hook for a cookie key; :meth:`__call__` does the whole check (CSRF included)
        itself, so this only answers whether the session is signed in, for any other caller."""
        user = getattr(request, "user", None)
        if key and user is not None and user.is_authenticated and user.is_active:
            return user
        return None
