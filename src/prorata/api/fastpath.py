"""The entitlement endpoint's fast road: ``GET /api/v1/entitlements/{email}`` answered at the WSGI
layer, before Django's middleware, URL resolver and django-ninja (issue 13: it sits on the webinar
product's sign-in path, ≥ 3,000 requests/s with p99 < 5 ms on two workers; figures in
``benchmarks/README.md``, "Entitlement endpoint").

Only the answers it is sure of take this road: a well-formed request with a usable product key
for a known user, answered 200 or 304 with the same body, ETag and headers as the route in
:mod:`prorata.api.entitlements` (one pure decision, :func:`~prorata.licenses.entitlements.
entitlement_decide`, one body and one ETag, :func:`~prorata.api.entitlements.entitlement_body`
and :func:`~prorata.api.entitlements.entitlement_etag`; a test
compares the two roads). Everything else goes to Django unchanged, so a refusal (no or a revoked
key, an unknown user, a host not allowed, plain HTTP where HTTPS is required, any other method)
is worded, logged and documented in one place. What Django's middleware would have done for these
answers is done here: the host is checked against ``ALLOWED_HOSTS``, the security headers are
those of ``SecurityMiddleware`` and ``XFrameOptionsMiddleware``, the request id is honoured and
echoed, and the request is counted and logged under the route's pattern, as
:class:`~prorata.common.requestlog.RequestLogMiddleware` does.

The default database connection (the only one this road uses) is opened and recycled as Django's
request signals do (closed past ``CONN_MAX_AGE`` or broken, before and after), so it persists.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIRequest
from django.db import connection

from prorata.api.entitlements import (
    CONTENT_TYPE,
    entitlement_body,
    entitlement_etag,
    entitlement_headers,
    etag_matches,
)
from prorata.common import metrics
from prorata.common.requestlog import HEADER, request_id, request_id_from
from prorata.licenses.entitlements import BRAND, entitlement_decide
from prorata.licenses.queries import entitlement_lookup
from prorata.licenses.selectors import WEBINAR_PRODUCT

PREFIX = "/api/v1/entitlements/"
#: The route label Django's resolver gives this endpoint (metrics and logs use the same).
ROUTE = "/api/v1/entitlements/<email>"
_BEARER = "Bearer " + BRAND

logger = logging.getLogger("prorata.request")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _security_headers() -> list[tuple[str, str]]:
    """What SecurityMiddleware and XFrameOptionsMiddleware add to every answer (HSTS: on
    HTTPS requests only, added per request)."""
    headers = []
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        headers.append(("Referrer-Policy",
                        policy if isinstance(policy, str) else ",".join(policy)))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    headers.append(("X-Frame-Options", getattr(settings, "X_FRAME_OPTIONS", "DENY").upper()))
    return headers


def _hsts() -> str | None:
    if not settings.SECURE_HSTS_SECONDS:
        return None
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        value += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        value += "; preload"
    return value


def _recycle() -> None:
    """What Django's request signals do with connections, for the one connection this road uses
    (the default): close it past ``CONN_MAX_AGE`` or broken (``close_old_connections`` walks
    every alias through thread-local lookups: a tenth of this road's time). Not inside an atomic
    block: only a test runs a request inside one (its transaction), and closing would end it,
    which is why Django's test client disconnects the same signal."""
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()


class EntitlementFastPath:
    """WSGI middleware: answers the entitlement endpoint's 200s and 304s itself and hands every
    other request to ``app`` (Django). Wraps :data:`prorata.wsgi.application`."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.headers = _security_headers()
        self.hsts = _hsts()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD")
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        if (not path.startswith(PREFIX) or method not in ("GET", "HEAD")
                or not authorization.startswith(_BEARER)):
            return self.app(environ, start_response)
        started = time.perf_counter()
        request = WSGIRequest(environ)
        email = request.path_info[len(PREFIX):]  # decoded as Django decodes it
        if not email or "/" in email:
            return self.app(environ, start_response)
        try:
            request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware checks it
        except DisallowedHost:
            return self.app(environ, start_response)
        secure = request.is_secure()
        if settings.SECURE_SSL_REDIRECT and not secure:
            return self.app(environ, start_response)
        _recycle()
        try:
            found = entitlement_decide(entitlement_lookup(
                email=email, key=authorization[len("Bearer "):], product=WEBINAR_PRODUCT))
        finally:
            _recycle()
        if found is None:  # a refused key or an unknown user: Django words the refusal
            return self.app(environ, start_response)
        etag = entitlement_etag(found)
        rid = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        headers = [*self.headers, *entitlement_headers(etag), (HEADER, rid)]
        if secure and self.hsts:
            headers.append(("Strict-Transport-Security", self.hsts))
        if etag_matches(etag, environ.get("HTTP_IF_NONE_MATCH", "")):
            status, body = 304, b""  # nothing rendered
        else:
            status, body = 200, entitlement_body(found)
            headers += [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))]
        start_response("304 Not Modified" if status == 304 else "200 OK", headers)
        seconds = time.perf_counter() - started
        metrics.REQUESTS.labels(ROUTE, method, str(status)).inc()
        metrics.REQUEST_SECONDS.labels(ROUTE, method).observe(seconds)
        if logger.isEnabledFor(logging.INFO):
            token = request_id.set(rid)
            try:
                logger.info("%s %s %d %.1f ms", method, ROUTE, status, seconds * 1000, extra={
                    "method": method, "route": ROUTE, "status": status,
                    "duration_ms": round(seconds * 1000, 1)})
            finally:
                request_id.reset(token)
        return [body if method == "GET" else b""]
