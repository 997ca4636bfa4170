"""The JSON API, version 1, mounted at ``/api/v1/`` (OpenAPI: ``/api/v1/openapi.json``, docs:
``/api/v1/docs`` with swagger-ui served from this server's static files).

Every operation needs a signed-in user: a personal API token (``Authorization: Bearer …``) or the
web session (plus ``X-CSRFToken`` for unsafe methods); see :mod:`prorata.api.auth`. Errors are
``{"code", "message", "params"}``, mapped once in :mod:`prorata.api.errors`.

Adding an area (e.g. invoices)
------------------------------
1. Create ``src/prorata/api/<area>.py`` with ``router = Router(tags=["<area>"])``, its input and
   output schemas, and handlers written with full paths, like :mod:`prorata.api.accounts`::

       @router.get("/accounts/{account_id}/invoices",
                   response={200: Page[InvoiceOut], **errors(401, 403, 404, 422)})
       def invoices(request: ApiRequest, account_id: int, filters: Query[ListQuery]):
           account = account_for(request.auth_user, account_id, Action.VIEW_BILLING)  # 1. first
           scope = f"account.invoices:{account.pk}"             # the list the cursor is bound to
           after = cursor_decode(scope, filters.cursor) if filters.cursor else None  # 422 if bad
           rows = invoices_page(account=account, after=after, limit=filters.limit)  # 2-3. selector
           return page_of(rows, limit=filters.limit, scope=scope,   # 4. the list envelope
                          position=lambda i: (i.issued_at, i.pk), out=InvoiceOut.of)

   Every list answers that envelope (:mod:`prorata.api.pagination`), never a bare array.

   ``account_for`` answers 404 for another account (never 403) and 403 for a member without the
   role. An object that belongs to an account (``/invoices/{invoice_id}``) is fetched *through*
   the account the user may see (``Invoice.objects.get(account=account, pk=invoice_id)`` → 404).
   Business refusals are ``ProrataError`` raised by the service; never build error bodies by hand.
2. Add the module to ``AREAS`` below.
3. Declare each new path's parameters and access in ``tests/app/test_authorization_matrix.py``
   (its docstring says how); the matrix fails until you do.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from importlib import import_module
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from ninja import NinjaAPI

from prorata.api.auth import BearerToken, SessionCookie
from prorata.api.errors import document_body_errors, install_error_handlers
from prorata.api.rendering import ApiRenderer

#: The modules whose ``router`` makes up the API, mounted at the root of ``/api/v1/``.
AREAS = [
    "prorata.api.accounts",
    "prorata.api.tokens",
    "prorata.api.subscriptions",
    "prorata.api.billing",
    "prorata.api.payment_methods",
    "prorata.api.licenses",
    "prorata.api.entitlements",
    "prorata.api.customers",
]

class ProrataApi(NinjaAPI):
    """NinjaAPI whose OpenAPI document lists the 400 and 413 that any body can get."""

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        return document_body_errors(super().get_openapi_schema(*args, **kwargs))


def docs_access(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Who may read the documentation page and the OpenAPI document: everyone (``public``),
    staff signed in to the console with their second factor (``staff``), or nobody (``off``),
    by ``PRORATA_API_DOCS``, read at each request. Anyone else gets the 404 of a page that does
    not exist: a private document does not say it is there."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        mode = settings.PRORATA_API_DOCS
        user = request.user
        staff = (user.is_authenticated and user.is_active and user.is_staff
                 and user.is_verified())  # type: ignore[union-attr]
        if mode == "off" or (mode == "staff" and not staff):
            raise Http404
        return view(request, *args, **kwargs)

    return guarded


api = ProrataApi(
    title="Prorata API",
    version="1",
    description=(
        "The billing center's JSON API. Authenticate with a personal API token "
        "(`Authorization: Bearer prorata_…`, created on your profile's API tokens page) or the "
        "web session. Errors are `{\"code\", \"message\", \"params\"}`.\n\n"
        "The **operator** routes (`/key`, `/customers…`) are for the operator's own backend: "
        "they take an operator API key (`Authorization: Bearer prorata_sk_live_…`, created by "
        "an operator in the console) and nothing else; every write needs an `Idempotency-Key` "
        "header. Lists answer `{\"data\", \"has_more\", \"next_cursor\"}` with opaque "
        "cursors."
    ),
    urls_namespace="api-v1",
    auth=[BearerToken(), SessionCookie()],
    renderer=ApiRenderer(),
    docs_decorator=docs_access,
)
install_error_handlers(api)


@api.get("/", auth=None, include_in_schema=False, url_name="index")
def index(request: HttpRequest) -> dict[str, str]:
    """Public: where the documentation is (this path would otherwise be an HTML 404)."""
    return {"openapi": reverse("api-v1:openapi-json"), "docs": reverse("api-v1:openapi-view")}


for _area in AREAS:
    api.add_router("", import_module(_area).router)
