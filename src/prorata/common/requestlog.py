"""Request ids, one log line per request, and the request metrics (issue 15 "Logs").

:class:`RequestLogMiddleware` (first in ``MIDDLEWARE``) gives every request an id: the incoming
``X-Request-ID`` when it is a plain token (1-128 letters, digits, ``.``, ``_``, ``-``; a proxy's id
then follows the request through), else a new random one. The id is echoed in the response's
``X-Request-ID`` and stamped, with the account id once the URL names one, on every log record the
request writes (:class:`ContextFilter`, through context variables: threads and processes never mix
them). After the response it logs one ``request`` line (method, route pattern, status, duration) and
counts the request in the metrics by route pattern.

A refused request (401, 403, 404, 429) also writes one ``denied`` line at WARNING on the
``prorata.security`` logger, with the signed-in user's id and the client address, so that probing
(another account's invoice ids, a missing role, a forged form) stands out from the request lines.

Never logged: request bodies, headers, query strings (a reset token travels in a path, which is
logged as its route pattern only), so card data and secrets cannot reach the log. A card number
typed into a text field is masked by the service that stores it; :class:`ContextFilter` masks one
in a record's message, exception text or string fields all the same (an error repeating the value
it refused, a database error quoting a row), as a last guard.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from prorata.common import metrics
from prorata.common.cardnumbers import mask_card_numbers

logger = logging.getLogger("prorata.request")
security_logger = logging.getLogger("prorata.security")

#: Statuses that refuse the caller: not signed in, not allowed, not theirs (Prorata answers 404
#: for another account's objects), throttled.
DENIED = frozenset({401, 403, 404, 429})

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
account_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("account_id", default=None)
job: contextvars.ContextVar[str | None] = contextvars.ContextVar("job", default=None)
job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)

HEADER = "X-Request-ID"
_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,128}")


def request_id_from(incoming: str | None) -> str:
    """The incoming id if it is a plain token, else a new one (32 hex digits)."""
    if incoming and _TOKEN.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


#: A LogRecord's own attributes: anything else on a record came from ``extra``.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def _mask_record(record: logging.LogRecord) -> None:
    """Mask card numbers in ``record``'s message, exception text and ``extra`` strings."""
    message = record.getMessage()
    scrubbed = mask_card_numbers(message)
    if scrubbed != message:
        record.msg, record.args = scrubbed, ()
    if record.exc_info and record.exc_info[0] is not None:
        text = logging.Formatter().formatException(record.exc_info)
        scrubbed = mask_card_numbers(text)
        if scrubbed != text:  # formatters print exc_text when exc_info is gone
            record.exc_info, record.exc_text = None, scrubbed
    elif record.exc_text:
        record.exc_text = mask_card_numbers(record.exc_text)
    for name, value in list(record.__dict__.items()):
        if name not in _RECORD_FIELDS and isinstance(value, str):
            setattr(record, name, mask_card_numbers(value))


class ContextFilter(logging.Filter):
    """Adds ``request_id``, ``account_id``, ``job`` and ``job_id`` to every record (``None``
    outside a request or a job), unless the record already carries them; masks card numbers
    (:func:`_mask_record`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if isinstance(request, HttpRequest):
            # Django's own request records ("Not Found: /accounts/reset/<uid>/<token>/"): the path
            # may hold a one-time token, so it is logged as its route pattern.
            if record.name.startswith("django.") and isinstance(record.args, tuple) \
                    and len(record.args) == 2:
                record.args = (record.args[0], _route(request))
            record.request = f"{request.method} {_route(request)}"
        for name, variable in (("request_id", request_id), ("account_id", account_id),
                               ("job", job), ("job_id", job_id)):
            if not hasattr(record, name):
                setattr(record, name, variable.get())
        _mask_record(record)
        return True


class RequestLogMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        rid = request_id_from(request.headers.get(HEADER))
        request.request_id = rid  # type: ignore[attr-defined]
        tokens = (request_id.set(rid), account_id.set(None))
        try:
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            response[HEADER] = rid
            route = _route(request)
            method = request.method if request.method in _METHODS else "other"
            metrics.REQUESTS.labels(route, method, str(response.status_code)).inc()
            metrics.REQUEST_SECONDS.labels(route, method).observe(seconds)
            level = logging.WARNING if response.status_code >= 500 else logging.INFO
            logger.log(level, "%s %s %d %.1f ms", method, route, response.status_code,
                       seconds * 1000, extra={
                           "method": method, "route": route, "status": response.status_code,
                           "duration_ms": round(seconds * 1000, 1)})
            if response.status_code in DENIED and route != "static":
                _log_denied(request, method, route, response.status_code)
            return response
        finally:
            request_id.reset(tokens[0])
            account_id.reset(tokens[1])

    def process_view(self, request: HttpRequest, view: Any, args: Any,
                     kwargs: dict[str, Any]) -> None:
        value = kwargs.get("account_id")
        if isinstance(value, int):
            account_id.set(value)


def _log_denied(request: HttpRequest, method: str, route: str, status: int) -> None:
    user = getattr(request, "user", None)
    user_id = user.pk if user is not None and user.is_authenticated else None
    # The route pattern, not the path: a path may hold a one-time token.
    security_logger.warning(
        "denied %s %s %d user=%s ip=%s", method, route, status, user_id or "-",
        request.META.get("REMOTE_ADDR") or "-",
        extra={"method": method, "route": route, "status": status, "user_id": user_id,
               "client_ip": request.META.get("REMOTE_ADDR")})


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def _route(request: HttpRequest) -> str:
    """The URL pattern that answered (bounded label), ``static`` or ``unmatched``."""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.route:
        return "/" + match.route
    if request.path.startswith("/static/"):
        return "static"
    return "unmatched"
