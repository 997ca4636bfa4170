"""What every operator-API route shares (issue 17): the key's authentication, its scope, the
``Idempotency-Key`` of every write, the audit entry of every write, input that is refused
before anything reads it, and the examples of the OpenAPI document.

- :class:`OperatorKeyAuth`: ``Authorization: Bearer prorata_sk_live_…`` (or ``_test_``). The
  operator routes accept nothing else (no personal token, no session), and the key opens no other
  route. ``request.operator_key`` is the key, ``request.auth_user`` its principal user.
- :func:`write`: runs a write once per ``Idempotency-Key`` (one namespace for all the operator's
  keys, 1-200 characters, required). A retry with the same key and request (method, path, body)
  answers the first answer with ``Idempotent-Replayed: true``; the same key with another request
  is a 409 ``idempotency_conflict``; while the first still runs, a 409 ``in_progress``. Only a
  success is kept: a refusal wrote nothing, and the same key may be sent again. A read-only key
  is refused first (403 ``read_only_key``).
- Every write made through the API is audited once more as ``operator_api.<operation>``: who
  (the key's principal, ``after.key`` its prefix), the IP, the account, the request's key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from ninja.security import HttpBearer
from pydantic import BaseModel, TypeAdapter

from prorata.accounts.models import Account, User
from prorata.accounts.services import audit_record
from prorata.accounts.throttle import client_ip
from prorata.api.errors import IdempotencyKeyRequired, ReadOnlyKey
from prorata.api.models import OperatorKey, OperatorKeyScope
from prorata.api.rendering import ApiRenderer
from prorata.api.services import (
    operator_key_authenticate,
    operator_request_begin,
    operator_request_finish,
    operator_request_release,
)
from prorata.common.db import retry_transient
from prorata_core.errors import ValidationError

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_renderer = ApiRenderer()


class OperatorApiRequest(HttpRequest):
    """An operator-API request, once authenticated."""

    auth_user: User
    operator_key: OperatorKey


# --- input refused before anything reads it -------------------------------------------------------

def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def reject_nul(request: HttpRequest) -> None:
    """Refuse (422, nothing read or written) a NUL character in the path, the query string or a
    JSON body's strings: PostgreSQL cannot store one, and no name, code or address holds one."""
    found = "\x00" in request.path_info or any(
        _has_nul(key) or _has_nul(values) for key, values in request.GET.lists())
    if not found and request.method not in ("GET", "HEAD"):
        body = request.body
        if b"\x00" in body:
            found = True
        elif b"\\u0000" in body:
            try:
                found = _has_nul(json.loads(body))
            except ValueError:
                found = False  # not JSON: the body's own validation refuses it
    if found:
        raise ValidationError("A NUL character (\\u0000) is not allowed in any value.",
                              field="request")


# --- authentication -------------------------------------------------------------------------------

class OperatorKeyAuth(HttpBearer):
    """``Authorization: Bearer prorata_sk_live_…`` — an operator API key from the console."""

    def authenticate(self, request: HttpRequest, token: str) -> User:
        key = operator_key_authenticate(key=token, ip=client_ip(request))
        reject_nul(request)
        request.operator_key = key  # type: ignore[attr-defined]
        request.auth_user = key.principal  # type: ignore[attr-defined]
        return key.principal


OPERATOR_AUTH = [OperatorKeyAuth()]


def require_write(request: OperatorApiRequest) -> OperatorKey:
    """The request's key, if it may write; else ReadOnlyKey (403)."""
    key = request.operator_key
    if key.scope != OperatorKeyScope.READ_WRITE:
        raise ReadOnlyKey(
            "This operator API key is read-only: it may read but not change anything. An "
            "operator creates a read-and-write key in the console.", key=key.display)
    return key


# --- writes ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Written:
    """What a write answers (``status``, ``out``) and what its audit entry names."""

    status: int
    out: BaseModel
    account: Account | None
    obj: Any = None


def _fingerprint(request: HttpRequest) -> str:
    body: Any = None
    if request.body:
        try:
            body = json.loads(request.body)
        except ValueError:
            body = request.body.decode(errors="replace")
    text = json.dumps([request.method, request.path, body], sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _response(status: int, body: bytes, replayed: bool = False) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type="application/json; charset=utf-8")
    if replayed:
        response[REPLAYED_HEADER] = "true"
    return response


def write(
    request: OperatorApiRequest, idempotency_key: str | None, operation: str,
    run: Callable[[], Written], *, atomic: bool = True,
) -> HttpResponse:
    """Run the write ``run`` once for ``idempotency_key`` (see the module docstring) and audit
    it as ``operator_api.<operation>``. ``atomic``: ``run``, its answer kept and its audit entry
    are one transaction (an order is not: the engine charges outside any transaction and keeps
    its own idempotency under the same key)."""
    key = require_write(request)
    value = (idempotency_key or "").strip()
    if not value or len(value) > 200:
        raise IdempotencyKeyRequired(
            f"Send an '{IDEMPOTENCY_HEADER}' header (1 to 200 characters) with a new unique "
            "value for this change (a UUID, say), and the same value if you send it again: it "
            "is then made once.")
    claimed, stored = operator_request_begin(key=value, fingerprint=_fingerprint(request),
                                             operator_key=key)
    if stored is not None:
        return _response(stored.status, bytes(stored.body), replayed=True)
    if claimed is None:  # operator_request_begin answers one or the other
        raise RuntimeError("An idempotency key neither claimed nor stored.")
    ip = client_ip(request)

    def finish(done: Written) -> bytes:
        body = _renderer.render(request, done.out.model_dump(), response_status=done.status)
        operator_request_finish(row=claimed, status=done.status, body=body)
        audit_record(actor=request.auth_user, action=f"operator_api.{operation}",
                     account=done.account, obj=done.obj, ip=ip,
                     after={"key": key.prefix, "key_name": key.name,
                            "idempotency_key": value, "status": done.status})
        return bytes(body)

    @retry_transient
    def in_one_transaction() -> tuple[int, bytes]:
        with transaction.atomic():
            done = run()
            return done.status, finish(done)

    try:
        if atomic:
            status, body = in_one_transaction()
        else:
            done = run()
            with transaction.atomic():
                status, body = done.status, finish(done)
    except BaseException:
        operator_request_release(row=claimed)
        raise
    return _response(status, body)


# --- the OpenAPI document's examples --------------------------------------------------------------

def documented(
    schema: type[BaseModel] | Any | None, example: Any, *, status: int = 200,
    body: dict[str, Any] | None = None, body_schema: type[BaseModel] | None = None,
    more: dict[int, Any] | None = None,
) -> dict[str, Any]:
    """An operation's ``openapi_extra``: its success answer's example (``more``: other
    statuses' examples; each checked against
    ``schema`` now, at import: an example that does not fit is a bug) and its body's.
    (ninja merges this into the operation it generated: the schemas stay its own.)"""
    examples = {status: example, **(more or {})}
    for value in examples.values():
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            schema.model_validate(value)
        elif schema is not None:  # list[Schema] and the like
            TypeAdapter(schema).validate_python(value)
    if body is not None and body_schema is not None:
        body_schema.model_validate(body)
    # Keyed by the int status, as ninja keys the responses it generates (a "200" string would
    # be a second entry that replaces ninja's, schema and all, in the JSON document).
    extra: dict[str, Any] = {"responses": {
        code: {"content": {"application/json": {"example": value}}}
        for code, value in examples.items()}}
    if body is not None:
        extra["requestBody"] = {"content": {"application/json": {"example": body}}}
    return extra


__all__ = ["IDEMPOTENCY_HEADER", "OPERATOR_AUTH", "OperatorApiRequest", "Written", "documented",
           "reject_nul", "require_write", "write"]
