"""API area "entitlements": what the webinar product asks before it lets someone in (S22).

``GET /api/v1/entitlements/{email}`` with ``Authorization: Bearer prorata_ent_…``, a key an
operator creates in the console (Entitlement API keys). Personal tokens and sessions are not
accepted here, and the key is accepted nowhere else: it reads entitlements and nothing more.

The answer carries an ``ETag``; a request with ``If-None-Match`` naming it answers 304 with no
body. Every case is an answer, never a 500:

- a known user who may host: 200, ``may_host: true``, the plan, its limit and features,
  ``valid_until`` (end of the paid period);
- a known user who may not: 200, ``may_host: false`` and ``reason`` — ``no_membership``,
  ``no_subscription``, ``no_license``, ``expired`` or ``past_due``;
- an unknown (or deactivated) address: 404, ``code: unknown_user``;
- no key, or a bad, unknown or revoked one: 401.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from ninja.security import HttpBearer

from prorata.api import examples
from prorata.api.errors import InvalidApiToken
from prorata.api.operator import documented
from prorata.api.rendering import ApiRenderer
from prorata.api.schemas import errors
from prorata.licenses.entitlements import (
    Entitlement,
    entitlement_for,
    entitlement_key_authenticate,
)
from prorata.licenses.errors import UnknownUser
from prorata.licenses.models import EntitlementKey

router = Router(tags=["entitlements"])
_renderer = ApiRenderer()


class EntitlementKeyAuth(HttpBearer):
    """``Authorization: Bearer prorata_ent_…`` — an entitlement API key from the console."""

    def authenticate(self, request: HttpRequest, token: str) -> EntitlementKey | None:
        key = entitlement_key_authenticate(token)
        if key is None:
            raise InvalidApiToken(
                "This endpoint takes an entitlement API key (prorata_ent_…) that is valid and "
                "not revoked: an operator creates one in the console.", reason="invalid_key")
        return key


class AccountRef(Schema):
    id: int
    name: str


class EntitlementOut(Schema):
    """``may_host`` says whether the user may host webinars now; when not, ``reason`` says why.
    ``participant_limit`` is the plan's (0 without a live plan); ``valid_until`` is the end of
    the paid period when ``may_host`` (renewals move it)."""

    email: str
    may_host: bool
    reason: Literal["no_membership", "no_subscription", "no_license", "expired",
                    "past_due"] | None
    plan: str | None
    participant_limit: int
    features: list[str]
    account: AccountRef | None
    valid_until: datetime | None


@router.get(
    "/entitlements/{email}", auth=[EntitlementKeyAuth()],
    response={200: EntitlementOut, 304: None, **errors(401, 404)},
    summary="May this user host webinars, and with what limits?",
    description=__doc__,
    openapi_extra=documented(EntitlementOut, examples.ENTITLEMENT) | {"parameters": [{
        "in": "header", "name": "If-None-Match", "required": False, "schema": {"type": "string"},
        "description": "An ETag of an earlier answer: 304 if unchanged."}]},
)
def entitlement(request: HttpRequest, email: str) -> HttpResponse:
    found = entitlement_for(email)
    if found is None:
        raise UnknownUser("No user signs in with this address.", email=email)
    etag = entitlement_etag(found)
    if etag_matches(etag, request.headers.get("If-None-Match", "")):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(entitlement_body(found), content_type=CONTENT_TYPE)
    for name, value in entitlement_headers(etag):
        response[name] = value
    return response


CONTENT_TYPE = "application/json; charset=utf-8"


def entitlement_body(found: Entitlement) -> bytes:
    """The answer's JSON, as both roads send it (this route and the WSGI fast path,
    :mod:`prorata.api.fastpath`)."""
    body = {
        "email": found.email, "may_host": found.may_host, "reason": found.reason,
        "plan": found.plan, "participant_limit": found.participant_limit,
        "features": found.features,
        "account": ({"id": found.account_id, "name": found.account_name}
                    if found.account_id is not None else None),
        "valid_until": found.valid_until,
    }
    return _renderer.render(None, body, response_status=200)  # type: ignore[arg-type]


#: Changes every ETag when the answer's shape changes (a new field, another rendering).
_ETAG_VERSION = "1"


def entitlement_etag(found: Entitlement) -> str:
    """The answer's ETag: a hash of every field it says (equal answers, equal tags; any change,
    another tag), computed from the fields rather than from the rendered JSON, so that a 304 is
    answered without rendering a body it does not send."""
    fields = (_ETAG_VERSION, found.email, found.may_host, found.reason, found.account_id,
              found.account_name, found.plan, found.participant_limit, tuple(found.features),
              found.valid_until.isoformat() if found.valid_until is not None else None)
    return '"' + hashlib.sha256(repr(fields).encode()).hexdigest()[:32] + '"'


def etag_matches(etag: str, if_none_match: str) -> bool:
    return etag in {tag.strip() for tag in if_none_match.split(",")}


def entitlement_headers(etag: str) -> list[tuple[str, str]]:
    return [("ETag", etag), ("Cache-Control", "private, no-cache")]


__all__ = ["EntitlementOut", "router"]
