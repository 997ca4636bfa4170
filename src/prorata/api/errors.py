"""The API's errors: every failure answers ``{"code", "message", "params"}`` (STYLE rule 10).

:func:`install_error_handlers` maps, once for the whole API:

===================================  ======  ==========================================
raised                               status  code
===================================  ======  ==========================================
``ProrataError`` (any subclass)      its ``http_status``   its ``code``
``Http404`` (``account_for`` …)      404     ``not_found`` (one message: no existence leak)
``PermissionDenied``                 403     ``forbidden``
request validation (pydantic)        422     ``invalid_input``, ``params.errors`` lists fields
no credentials                       401     ``not_authenticated``
a body that is not JSON               400     ``invalid_json``
a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``  413  ``request_too_large`` (before it is read)
ninja ``HttpError`` (e.g. 429)       its     ``http_<status>`` or a name below
anything else                        500     ``server_error`` (logged like Django's own 500)
===================================  ======  ==========================================

Every operation that takes a body documents its 400 and 413 (:func:`document_body_errors`).

Handlers never raise a ProrataError themselves to say "no": ``account_for`` and the services do.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.signals import got_request_exception
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from prorata_core.errors import ProrataError

logger = logging.getLogger("django.request")

NOT_FOUND_MESSAGE = "Not found: there is nothing at this address that you may see."
NOT_AUTHENTICATED_MESSAGE = (
    "Sign in, or send a personal API token in the header 'Authorization: Bearer <token>' "
    "(create one on your profile's API tokens page)."
)
_HTTP_CODES = {
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    429: "throttled",
}


class InvalidApiToken(ProrataError):
    """A bearer token that is malformed, unknown, revoked or expired; ``params.reason`` says which."""

    code = "invalid_token"
    http_status = 401


class IdempotencyKeyRequired(ProrataError):
    """A checkout without the ``Idempotency-Key`` header."""

    code = "idempotency_key_required"
    http_status = 400


class CsrfFailed(ProrataError):
    """An unsafe request authenticated by the session cookie without a valid CSRF token."""

    code = "csrf_failed"
    http_status = 403


class InvalidJson(ProrataError):
    """A request body that cannot be read as JSON (or not as UTF-8)."""

    code = "invalid_json"
    http_status = 400


class RequestTooLarge(ProrataError):
    """A request body larger than the server accepts (``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes);
    ``params.limit`` is that size."""

    code = "request_too_large"
    http_status = 413


INVALID_JSON_MESSAGE = "The request body is not valid JSON: send one JSON object, encoded in UTF-8."


def error_body(code: str, message: str, **params: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "params": params}


def _field(loc: Any) -> str:
    # ninja's loc is ("path" | "query" | "body" | …, field, …); the field path is what helps.
    parts = [str(p) for p in (loc or [])]
    return ".".join(parts[1:] if len(parts) > 1 else parts)


def install_error_handlers(api: NinjaAPI) -> None:
    """Register the mapping above on ``api`` (call it once, where the API is built)."""

    def respond(request: HttpRequest, status: int, body: dict[str, Any]) -> HttpResponse:
        response = api.create_response(request, body, status=status)
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="prorata"'
        return response

    @api.exception_handler(ProrataError)
    def prorata_error(request: HttpRequest, exc: ProrataError) -> HttpResponse:
        return respond(request, exc.http_status, exc.as_dict())

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return respond(request, 404, error_body("not_found", NOT_FOUND_MESSAGE))

    @api.exception_handler(PermissionDenied)
    def forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        message = str(exc) or "You may not do this on this account."
        return respond(request, 403, error_body("forbidden", message))

    @api.exception_handler(NinjaValidationError)
    def invalid(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        errors = [
            {"field": _field(e.get("loc")), "message": str(e.get("msg", "")),
             "type": str(e.get("type", ""))}
            for e in exc.errors
        ]
        details = "; ".join(f"{e['field'] or 'request'}: {e['message']}" for e in errors)
        return respond(
            request, 422, error_body("invalid_input", f"The request is not valid: {details}.",
                                     errors=errors),
        )

    @api.exception_handler(AuthenticationError)
    def not_authenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return respond(request, 401, error_body("not_authenticated", NOT_AUTHENTICATED_MESSAGE))

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if exc.status_code == 400 and str(exc).startswith("Cannot parse request body"):
            # ninja's own refusal of a body it could not parse (its wording, without the code).
            return prorata_error(request, InvalidJson(INVALID_JSON_MESSAGE))
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return respond(request, exc.status_code, error_body(code, str(exc)))

    @api.exception_handler(RequestDataTooBig)
    def too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        # Django refuses to read a body over the limit; without this it was a 500.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return prorata_error(request, RequestTooLarge(
            f"The request body is larger than this server accepts ({limit} bytes): "
            "send less at a time.", limit=limit))

    @api.exception_handler(Exception)
    def server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
        # What Django does for a view's uncaught exception: log it (mail_admins listens there) and
        # send the signal (the test client re-raises from it, so tests still see the traceback).
        logger.error("Internal Server Error: %s", request.path, exc_info=(type(exc), exc, exc.__traceback__),
                     extra={"status_code": 500, "request": request})
        got_request_exception.send(sender=None, request=request)
        return respond(request, 500, error_body(
            "server_error", "Something went wrong on our side; it has been logged. Try again later."
        ))


class InvalidCursor(ProrataError):
    """A list's ``cursor`` that is not one the list gave (garbage, altered, another list's)."""

    code = "invalid_cursor"
    http_status = 422


class ReadOnlyKey(ProrataError):
    """A write sent with a read-only operator API key."""

    code = "read_only_key"
    http_status = 403


def document_body_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the 400 (``invalid_json``) and 413 (``request_too_large``) answers to every operation
    of the OpenAPI ``schema`` that takes a request body, with the error body of its other
    errors: any body can be malformed or too large, whatever the handler. Returns ``schema``."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            responses = operation.setdefault("responses", {})
            error = next((answer for status, answer in responses.items()
                          if str(status).startswith("4")), None)
            if error is None:
                continue
            for status, description in (
                    (400, "The body is not valid JSON (invalid_json)."),
                    (413, "The body is larger than the server accepts (request_too_large).")):
                if status not in responses and str(status) not in responses:
                    responses[status] = {**error, "description": description}
    return schema


#: The page messages of this module's codes (prorata.web.errors.page_messages merges them); the
#: French is in this app's catalog. The API itself answers the English ``message`` raised.
MESSAGES = {
    "invalid_json": _(
        "The request body is not valid JSON: send one JSON object, encoded in UTF-8."),
    "request_too_large": _(
        "What you sent is larger than this server accepts: send less at a time."),
    "invalid_cursor": _(
        "This list position is not valid: go back to the first page and try again."),
    "read_only_key": _(
        "This API key may only read: an operator creates a read-and-write key in the console."),
}
