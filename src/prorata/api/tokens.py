"""API area "tokens": the user's own API tokens — list them, revoke one.

Tokens are created only on the tokens page (``/profile/tokens/``), never through the API: a leaked
token must not be able to mint others that outlive its revocation. Revoking is allowed here so
that a program (or anyone who finds a leaked token) can kill it at once.

A token belongs to a user, not to an account: the handler finds it among the user's own tokens,
so anyone else's token is a 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import Http404
from ninja import Query, Router, Schema

from prorata.accounts.throttle import client_ip
from prorata.api import examples
from prorata.api.auth import ApiRequest
from prorata.api.billing import ListQuery
from prorata.api.models import ApiToken
from prorata.api.operator import documented
from prorata.api.pagination import Page, cursor_decode, page_of
from prorata.api.schemas import errors
from prorata.api.selectors import api_token_of, api_tokens_page
from prorata.api.services import api_token_revoke
from prorata.common.clock import now

router = Router(tags=["tokens"])


class TokenOut(Schema):
    """A token as the API shows it: never the secret, only its non-secret start."""

    id: int
    name: str
    display: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    status: str

    @staticmethod
    def of(token: ApiToken, instant: datetime) -> TokenOut:
        return TokenOut(
            id=token.pk, name=token.name, display=token.display, created_at=token.created_at,
            last_used_at=token.last_used_at, expires_at=token.expires_at,
            revoked_at=token.revoked_at, status=token.status_at(instant),
        )


@router.get("/tokens", response={200: Page[TokenOut], **errors(401, 422)},
            summary="The user's API tokens, newest first (paginated)",
            openapi_extra=documented(Page[TokenOut], examples.TOKENS_PAGE))
def tokens(request: ApiRequest, filters: Query[ListQuery]) -> dict[str, Any]:
    """The list envelope: ``data``, ``has_more``, ``next_cursor`` (opaque; pass it back as
    ``cursor``). Revoked and expired tokens included."""
    user = request.auth_user
    scope = f"user.tokens:{user.pk}"
    after = cursor_decode(scope, filters.cursor) if filters.cursor else None
    rows = api_tokens_page(user=user, after=after, limit=filters.limit)
    instant = now()
    return page_of(rows, limit=filters.limit, scope=scope,
                   position=lambda t: (t.created_at, t.pk), out=lambda t: TokenOut.of(t, instant))


@router.delete("/tokens/{token_id}", response={200: TokenOut, **errors(401, 403, 404, 422)},
               summary="Revoke one of the user's API tokens",
               openapi_extra=documented(TokenOut, examples.TOKEN_REVOKED))
def token_revoke(request: ApiRequest, token_id: int) -> TokenOut:
    """Revoke the token now (revoking a revoked token changes nothing); 404 if not the user's."""
    token = api_token_of(user=request.auth_user, token_id=token_id)
    if token is None:
        raise Http404("No such token")
    token = api_token_revoke(actor=request.auth_user, token=token, ip=client_ip(request))
    return TokenOut.of(token, now())
