"""The authorization matrix: every URL of the project, found at run time, against who may reach it.

The test walks ``django.urls.get_resolver()`` recursively — the pages, the JSON API under
``/api/v1/`` (each django-ninja path is a Django URL pattern) and the Django admin under ``/console/``
— so a URL added by anyone later is covered without asking. For every route it builds a concrete
URL from a world of two customer accounts, A and B, and asserts:

(a) anonymous visitors are sent to sign in — a redirect to ``LOGIN_URL`` for pages, 401 for the
    API, a redirect to the console's login for ``/console/`` — unless the route is public;
(b) a signed-in member of account A holding every role (billing contact, admin, organizer) gets
    404 — not 403, never data — for anything that names account B's objects, by page URL and by
    API id (with a session and with an API token); routes that name nothing answer them without
    a trace of account B; and the same URLs built with A's own objects do work (so the 404 is not
    a broken URL);
(c) customers get no access to ``/console/``: a redirect to the console's login;
(d) inside their own account, a member lacking the role an endpoint requires gets 403 (for
    billing endpoints: a member who is not a billing contact), never the data.

How to add a new endpoint
-------------------------
1. **Declare it in ACCESS** (below): ``"route": Rule(...)``, where the route is how Django prints
   the pattern (the id of the failing test; for the API it is ``api/v1/…/<account_id>``):

   - ``Rule(public=True)`` for a page anyone may open (add it only if the product says so);
   - ``Rule(action=Action.VIEW_BILLING)``: the account action the view passes to ``account_for``,
     for every route that names an account (required when the route has ``account_id``);
   - ``Rule()`` for a signed-in page or endpoint that names no account (or only the user's own
     objects, which must answer 404 for anyone else's);
   - ``probes=(...)``: the requests to make. Default: GET for pages; for the API, every method the
     OpenAPI document lists, without a body. Declare a ``Probe("POST", data=...)`` for page forms
     and API bodies, with a function of the :class:`Side` giving valid input, so that the only
     reason for a refusal is authorization (a 422 would hide a missing check).
     ``Probe(query=...)`` names an account by query string (``?account=<id>``).
2. **Give every new parameter name a filler** in PARAMETERS: a function from a :class:`Side` to
   the value naming that side's object (``"invoice_id": lambda side: side.make("invoice",
   lambda: invoice_factory(side.account)).pk``). ``Side.make`` creates an object once per side.
3. Run this module. It fails, with the list of what to declare, when a route has no row, a
   parameter has no filler, a row names a route that no longer exists, or an account route
   declares no action.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.regex_helper import normalize

from prorata.accounts.models import Account, Membership, User
from prorata.accounts.permissions import Action, can
from prorata.accounts.services import account_create, membership_set_roles
from prorata.api.models import ApiToken
from prorata.api.services import api_token_create
from prorata.api.v1 import api as api_v1
from prorata.catalog.services import catalog_load_demo
from prorata.common.clock import now
from prorata.licenses.entitlements import entitlement_key_create
from prorata.licenses.models import LicenseAssignment
from prorata.licenses.services import license_assign, member_invite
from prorata.payments.sandbox import sandbox_token
from prorata.payments.services import payment_method_add
from prorata.subscriptions.models import Subscription
from prorata.subscriptions.selectors import order_quote
from prorata.subscriptions.services import checkout_place
from prorata.support.services import support_request_create
from prorata.webinars.services import webinar_schedule

pytestmark = pytest.mark.django_db

CONSOLE = "console/"
API = "api/"
#: Routes under these prefixes are public whatever they are (static files when served by Django;
#: the sandbox payment gateway's own pages, a provider's host: a token or secret is its credential).
PUBLIC_PREFIXES = ("static/", "media/", "sandbox-gateway/")
ROLES = ("billing_contact", "admin", "organizer")
CONSOLE_LOGIN = "/console/login/?next="
#: Console routes that send customers elsewhere than the login: Django's admin sends a signed-out
#: or non-staff visitor of its logout page to its index, which sends them to the login.
CONSOLE_REDIRECTS = {"console/logout/": "/console/"}


# --- the world: two customer accounts, each with its people and objects -------------------------


@dataclass
class Side:
    """One customer account and what belongs to it.

    ``principal`` holds every role in ``account``; ``members[role]`` holds only ``role``
    (``members["none"]`` is a member with no role). ``token`` is the principal's API token.
    """

    label: str
    account: Account
    principal: User
    members: dict[str, User]
    token: ApiToken
    token_secret: str
    made: dict[str, Any] = field(default_factory=dict)

    def make(self, key: str, factory: Callable[[], Any]) -> Any:
        """``factory()`` the first time ``key`` is asked for on this side, the same object after."""
        if key not in self.made:
            self.made[key] = factory()
        return self.made[key]

    @property
    def markers(self) -> list[str]:
        """Strings that only this side's data contains: none may appear in the other side's pages."""
        return [self.account.name, self.principal.email, *(u.email for u in self.members.values())]


def make_side(label: str) -> Side:
    account = account_create(name=f"Matrix {label} Zq{label}x", country="FR",
                             billing_address=f"{label} street")
    principal = User.objects.create_user(f"principal-{label}@matrix.example", "pw")
    membership_set_roles(actor=None, account=account, user=principal,
                         **dict.fromkeys(ROLES, True))
    members = {}
    for role in (*ROLES, "none"):
        members[role] = User.objects.create_user(f"{role}-{label}@matrix.example", "pw")
        membership_set_roles(actor=None, account=account, user=members[role],
                             **({role: True} if role != "none" else {}))
    token, secret = api_token_create(user=principal, name=f"token {label}")
    return Side(label.lower(), account, principal, members, token, secret)


@pytest.fixture
def sides(clock) -> tuple[Side, Side]:
    return make_side("A"), make_side("B")


# --- how to fill each parameter ------------------------------------------------------------------

#: Parameter name → the value that names ``side``'s object. Keep one meaning per name.
PARAMETERS: dict[str, Callable[[Side], object]] = {
    "account_id": lambda side: side.account.pk,
    "customer_id": lambda side: side.account.pk,  # the operator API's name of an account
    "token_id": lambda side: side.token.pk,
    # Public links sent by e-mail (password reset, e-mail change): any value shows the "invalid
    # link" page; they are in ACCESS as public.
    "uidb64": lambda side: urlsafe_base64_encode(force_bytes(side.principal.pk)),
    "token": lambda side: "invalid-token",
    # The console (Django admin): customers are redirected to its login whatever the value.
    "app_label": lambda side: "accounts",
    "object_id": lambda side: side.account.pk,
    "id": lambda side: side.principal.pk,
    "pk": lambda side: side.principal.pk,  # django-otp's device pages (superusers only)
    # The console's money pages (staff only; per role in tests/app/console/test_console_matrix.py).
    "invoice_id": lambda side: side.account.pk,
    "refund_id": lambda side: side.account.pk,
    "key_id": lambda side: side.account.pk,  # an operator API key (operators only)
    "content_type_id": lambda side: ContentType.objects.get_for_model(Account).pk,
    "url": lambda side: "no-such-page/",
    # The sandbox gateway's 3-D Secure page: its secret is the credential (an unknown one: 404).
    "secret": lambda side: "no-such-challenge",
    # The billing center's API (the demo catalog is loaded once a side needs it).
    "product_code": lambda side: billing_catalog(side) or "webinar",
    "document_id": lambda side: side.make("invoice", lambda: billing_purchase(side).invoice).pk,
    "payment_method_id": lambda side: side.make("card", lambda: payment_method_add(
        account=side.account, token=sandbox_token(), actor=side.principal)).pk,
    # The billing center's pages: the order of the side's purchase (the invoice's order).
    "order_id": lambda side: side.make("invoice", lambda: billing_purchase(side).invoice).order_id,
    # Licenses and members (issue 13): the side's member with no role; a pending invitation.
    "member_id": lambda side: side.make("member", lambda: Membership.objects.get(
        user=side.members["none"]).pk),
    "invitation_id": lambda side: side.make("invitation", lambda: member_invite(
        actor=side.principal, account=side.account,
        email=f"invited-{side.label}@matrix.example")[0]).pk,
    # The Support pages: a request of the side's account.
    "request_id": lambda side: side.make("support_request", lambda: support_request_create(
        account=side.account, user=side.principal, kind="other", message="Matrix")).pk,
    "subscription_id": lambda side: side_subscription(side).pk,
    # Webinars: one the principal (an organizer with a license) scheduled; its public page.
    "webinar_id": lambda side: matrix_webinar(side).pk,
    "public_id": lambda side: matrix_webinar(side).public_id,
    "email": lambda side: side.principal.email,
}


def matrix_webinar(side: Side) -> Any:
    def schedule() -> Any:
        body = license_assign_body(side)
        license_assign(actor=side.principal, account=side.account,
                       subscription_id=body["subscription"], member_id=body["member"])
        return webinar_schedule(organizer=side.principal, account=side.account,
                                title=f"Matrix webinar {side.label}",
                                starts_at=now() + timedelta(days=30), duration_minutes=60,
                                time_zone="UTC")
    return side.make("webinar", schedule)


def webinar_body(side: Side) -> dict[str, Any]:
    matrix_webinar(side)  # the principal holds a license from then on
    return {"title": "Matrix", "start": "2030-01-01T10:00", "duration_minutes": "60",
            "time_zone": "UTC"}


def side_subscription(side: Side) -> Subscription:
    """The side's subscription (Lite × 1, bought once per side)."""
    invoice = side.make("invoice", lambda: billing_purchase(side).invoice)
    return Subscription.objects.get(invoice=invoice)


def api_assign_body(side: Side) -> dict[str, Any]:
    """Assign the side's only license to its member with no role: free it first."""
    LicenseAssignment.objects.filter(subscription=side_subscription(side)).delete()
    return {"member_id": Membership.objects.get(user=side.members["none"]).pk}


def api_unassign_body(side: Side) -> dict[str, Any]:
    """Unassign the license the member with no role holds (given first, if need be)."""
    subscription = side_subscription(side)
    member = Membership.objects.get(user=side.members["none"])
    if not LicenseAssignment.objects.filter(subscription=subscription, member=member).exists():
        LicenseAssignment.objects.filter(subscription=subscription).delete()
        license_assign(actor=side.principal, account=side.account,
                       subscription_id=subscription.pk, member_id=member.pk)
    return {}


def license_assign_body(side: Side) -> dict[str, Any]:
    """Assign the principal a license of the side's subscription (bought once per side)."""
    invoice = side.make("invoice", lambda: billing_purchase(side).invoice)
    return {"action": "assign", "subscription": Subscription.objects.get(invoice=invoice).pk,
            "member": Membership.objects.get(user=side.principal).pk}


# --- billing objects and bodies (the billing center's API) ---------------------------------------

def with_subscription(side: Side) -> dict[str, Any]:
    """No body; the side's account gets its subscription first (bought once per side)."""
    side.make("invoice", lambda: billing_purchase(side).invoice)
    return {}


BILLING_ITEM = {"product_code": "webinar", "plan_code": "lite", "cycle_code": "monthly",
                "quantity": 1}


def billing_catalog(side: Side) -> None:
    side.make("catalog", catalog_load_demo)


def billing_quote(side: Side) -> Any:
    billing_catalog(side)
    item = BILLING_ITEM
    return order_quote(account=side.account, user=side.principal, product_code=item["product_code"],
                       plan_code=item["plan_code"], cycle_code=item["cycle_code"],
                       quantity=item["quantity"])


def billing_purchase(side: Side) -> Any:
    """Lite monthly × 1 bought by ``side``'s principal with a card: an invoice to name."""
    quote = billing_quote(side)
    return checkout_place(account=side.account, user=side.principal,
                          idempotency_key=f"matrix-setup-{side.label}", items=[quote.item],
                          expected=[quote.fingerprint], card_token=sandbox_token())


def checkout_body(side: Side) -> dict[str, Any]:
    return {"items": [BILLING_ITEM], "expected": [billing_quote(side).fingerprint],
            "card_token": sandbox_token()}


# --- the table -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One request to make: a method, and optional form fields / JSON body / query string.

    A probe names the side's objects when its route has parameters, when it has a ``query``, or
    when its ``data`` carries the side's ids (say so with ``names_account=True``).
    """

    method: str = "GET"
    data: Callable[[Side], dict[str, Any]] | None = None
    query: Callable[[Side], dict[str, Any]] | None = None
    names_account: bool = False
    #: Extra request headers, as Django's test client takes them (``HTTP_IDEMPOTENCY_KEY``).
    headers: Callable[[Side], dict[str, str]] | None = None


@dataclass(frozen=True)
class Rule:
    """Who may reach a route: see the module docstring."""

    public: bool = False
    action: Action | None = None
    probes: tuple[Probe, ...] = ()
    #: Answers the webinar product's entitlement key only (not users): see
    #: test_the_entitlement_key_reads_entitlements_only.
    product_key: bool = False
    #: An operator-API route (issue 17): only an operator API key opens it; customers'
    #: sessions and personal tokens get 401 (test_operator_routes_take_only_an_operator_key).
    operator: bool = False


GET = Probe()
POST = Probe("POST")

ACCESS: dict[str, Rule] = {
    # Public pages (the allow-list).
    "": Rule(public=True),  # the plans page
    "accounts/login/": Rule(public=True),
    "accounts/logout/": Rule(public=True),  # signing out when signed out changes nothing
    "accounts/password_reset/": Rule(public=True),
    "accounts/password_reset/done/": Rule(public=True),
    "accounts/reset/<uidb64>/<token>/": Rule(public=True),
    "accounts/reset/done/": Rule(public=True),
    "accounts/email/confirm/<str:token>/": Rule(public=True),  # opened from the e-mail
    "plans/": Rule(public=True),  # the plans page, for signed-in customers too
    "accounts/signup/": Rule(public=True, probes=(GET, Probe("POST", data=lambda s: {
        "company": "Matrix signup", "country": "FR", "email": f"signup-{s.label}@matrix.example",
        "password1": "correct horse battery", "password2": "correct horse battery"}))),
    "accounts/signup/confirm/<uidb64>/<token>/": Rule(public=True),  # opened from the e-mail
    "i18n/setlang/": Rule(public=True, probes=(Probe("POST", data=lambda s: {"language": "fr"}),)),
    "api/v1/": Rule(public=True),  # the API's index: links to its documentation
    "api/v1/openapi.json": Rule(public=True),
    "api/v1/docs": Rule(public=True),
    "console/login/": Rule(public=True),
    # Operations: no sign-in, no details (tests/app/web/test_health.py); /metrics is guarded by
    # its bearer token instead (404 while none is configured, as in this test).
    "healthz": Rule(public=True),
    "readyz": Rule(public=True),
    "metrics": Rule(public=True),
    # The Stripe gateway's card-form script (static) and webhook: Stripe's signature is the
    # webhook's credential (a POST without it is a 400 with nothing done:
    # tests/app/payments/test_stripe_journey.py).
    "payments/stripe/v1/card.js": Rule(public=True),
    "payments/stripe/v1/webhook": Rule(public=True, probes=(Probe("POST", data=lambda s: {}),)),
    # Signed-in pages about the user themself.
    "profile/": Rule(),
    "profile/password/": Rule(probes=(POST,)),  # forms posted from the profile page
    "profile/email/": Rule(probes=(POST,)),
    "profile/language/": Rule(probes=(POST,)),
    "profile/tokens/": Rule(probes=(GET, Probe("POST", data=lambda s: {"name": "matrix",
                                                                       "validity": "30"}))),
    "profile/tokens/<int:token_id>/revoke/": Rule(probes=(POST,)),
    # The API: the user and their accounts.
    "api/v1/me": Rule(),
    "api/v1/accounts": Rule(),
    "api/v1/accounts/<account_id>": Rule(action=Action.VIEW_ACCOUNT),
    "api/v1/accounts/<account_id>/members": Rule(action=Action.MANAGE_MEMBERS),
    "api/v1/tokens": Rule(),
    "api/v1/tokens/<token_id>": Rule(),
    # The API: the billing center (quotes, cart, checkout, subscriptions, receipts, cards).
    "api/v1/accounts/<account_id>/quote": Rule(action=Action.MANAGE_BILLING, probes=(
        Probe("POST", data=lambda s: billing_catalog(s) or BILLING_ITEM),)),
    "api/v1/accounts/<account_id>/cart": Rule(action=Action.MANAGE_BILLING),
    "api/v1/accounts/<account_id>/cart/items/<product_code>": Rule(
        action=Action.MANAGE_BILLING, probes=(
            Probe("PUT", data=lambda s: {"plan_code": "lite", "cycle_code": "monthly",
                                         "quantity": 1}),
            Probe("DELETE"))),
    "api/v1/accounts/<account_id>/checkout": Rule(action=Action.MANAGE_BILLING, probes=(
        Probe("POST", data=checkout_body,
              headers=lambda s: {"HTTP_IDEMPOTENCY_KEY": f"matrix-{s.label}"}),)),
    "api/v1/accounts/<account_id>/subscriptions": Rule(action=Action.VIEW_BILLING),
    "api/v1/accounts/<account_id>/subscriptions/<product_code>/cancel-renewal": Rule(
        action=Action.MANAGE_BILLING, probes=(Probe("POST", data=with_subscription),)),
    "api/v1/accounts/<account_id>/subscriptions/<product_code>/resume-renewal": Rule(
        action=Action.MANAGE_BILLING, probes=(Probe("POST", data=with_subscription),)),
    "api/v1/accounts/<account_id>/invoices": Rule(action=Action.VIEW_BILLING),
    "api/v1/accounts/<account_id>/invoices/<document_id>": Rule(action=Action.VIEW_BILLING),
    "api/v1/accounts/<account_id>/invoices/<document_id>/pdf": Rule(action=Action.VIEW_BILLING),
    "api/v1/accounts/<account_id>/transactions": Rule(action=Action.VIEW_BILLING),
    "api/v1/accounts/<account_id>/transactions.csv": Rule(action=Action.VIEW_BILLING),
    "api/v1/accounts/<account_id>/payment-methods": Rule(action=Action.MANAGE_BILLING, probes=(
        GET, Probe("POST", data=lambda s: {"token": sandbox_token()}))),
    "api/v1/accounts/<account_id>/payment-methods/<payment_method_id>/default": Rule(
        action=Action.MANAGE_BILLING),
    "api/v1/accounts/<account_id>/payment-methods/<payment_method_id>": Rule(
        action=Action.MANAGE_BILLING),
    # Licenses over the API (issue 13): the pools, assigning, and who loses one at the next order.
    "api/v1/accounts/<account_id>/licenses": Rule(action=Action.MANAGE_LICENSES),
    "api/v1/accounts/<account_id>/licenses/<subscription_id>/assignments": Rule(
        action=Action.MANAGE_LICENSES, probes=(Probe("POST", data=api_assign_body),)),
    "api/v1/accounts/<account_id>/licenses/<subscription_id>/assignments/<member_id>": Rule(
        action=Action.MANAGE_LICENSES, probes=(Probe("DELETE", data=api_unassign_body),)),
    "api/v1/accounts/<account_id>/subscriptions/<product_code>/license-releases": Rule(
        action=Action.MANAGE_LICENSES, probes=(Probe("PUT", data=lambda s: {
            "quantity": 1, "member_ids": []}),)),
    # The webinar product's question (issue 13): its entitlement key, never a user's credential.
    "api/v1/entitlements/<email>": Rule(product_key=True),
    # The operator API (issue 17): an operator API key, nothing else.
    **{f"api/v1/{route}": Rule(operator=True) for route in (
        "key", "customers", "customers/<customer_id>", "customers/<customer_id>/contacts",
        "customers/<customer_id>/trials", "customers/<customer_id>/quote",
        "customers/<customer_id>/orders", "customers/<customer_id>/subscriptions",
        "customers/<customer_id>/subscriptions/<product_code>/cancel-renewal",
        "customers/<customer_id>/subscriptions/<product_code>/resume-renewal",
        "customers/<customer_id>/licenses",
        "customers/<customer_id>/subscriptions/<product_code>/license-releases",
        "customers/<customer_id>/invoices", "customers/<customer_id>/invoices/<document_id>",
        "customers/<customer_id>/invoices/<document_id>/pdf",
        "customers/<customer_id>/credit-notes",
        "customers/<customer_id>/credit-notes/<document_id>",
        "customers/<customer_id>/credit-notes/<document_id>/pdf",
        "customers/<customer_id>/payments", "customers/<customer_id>/ledger")},
    # The billing center's pages (web/urls_billing.py).
    "billing/": Rule(),  # the user's accounts: straight to the only one
    "billing/<int:account_id>/": Rule(action=Action.VIEW_ACCOUNT),
    "billing/<int:account_id>/subscriptions/<slug:product_code>/modify/": Rule(
        action=Action.MANAGE_BILLING, probes=(GET, Probe("POST", data=lambda s: {
            "plan": "lite", "cycle": "monthly", "quantity": "1", "action": "add_to_cart"}))),
    "billing/<int:account_id>/subscriptions/<slug:product_code>/cancel-renewal/": Rule(
        action=Action.MANAGE_BILLING, probes=(Probe("GET", data=with_subscription), POST)),
    "billing/<int:account_id>/subscriptions/<slug:product_code>/resume-renewal/": Rule(
        action=Action.MANAGE_BILLING, probes=(POST,)),
    "billing/<int:account_id>/cart/": Rule(action=Action.MANAGE_BILLING, probes=(
        GET, Probe("POST", data=lambda s: {"product": "webinar"}))),
    "billing/<int:account_id>/checkout/": Rule(action=Action.MANAGE_BILLING, probes=(
        GET, Probe("POST", data=lambda s: {"idempotency_key": f"matrix-page-{s.label}"}))),
    "billing/<int:account_id>/orders/<int:order_id>/": Rule(action=Action.VIEW_BILLING),
    # Where the bank's 3-D Secure page sends the customer back after the checkout.
    "billing/<int:account_id>/orders/<int:order_id>/authenticated/": Rule(
        action=Action.MANAGE_BILLING),
    "billing/<int:account_id>/transactions/": Rule(action=Action.VIEW_BILLING),
    "billing/<int:account_id>/transactions.csv": Rule(action=Action.VIEW_BILLING),
    "billing/<int:account_id>/documents/<int:document_id>.pdf": Rule(
        action=Action.VIEW_BILLING),
    "billing/<int:account_id>/invoices/<int:document_id>/pay/": Rule(
        action=Action.MANAGE_BILLING, probes=(GET, POST)),
    # Where the bank's 3-D Secure page sends the customer back after Pay now.
    "billing/<int:account_id>/invoices/<int:document_id>/pay/authenticated/": Rule(
        action=Action.MANAGE_BILLING),
    "billing/<int:account_id>/payment-methods/": Rule(action=Action.MANAGE_BILLING, probes=(
        GET, Probe("POST", data=lambda s: {"card_token": sandbox_token()}))),
    "billing/<int:account_id>/payment-methods/<int:payment_method_id>/default/": Rule(
        action=Action.MANAGE_BILLING, probes=(POST,)),
    "billing/<int:account_id>/payment-methods/<int:payment_method_id>/remove/": Rule(
        action=Action.MANAGE_BILLING, probes=(POST,)),
    # Licenses and members (licenses/urls.py); the invitation link is opened from its e-mail.
    "billing/<int:account_id>/licenses/": Rule(action=Action.MANAGE_LICENSES, probes=(
        GET, Probe("POST", data=license_assign_body))),
    "billing/<int:account_id>/members/": Rule(action=Action.MANAGE_LICENSES, probes=(
        GET, Probe("POST", data=lambda s: {"email": f"new-{s.label}@matrix.example"}))),
    "billing/<int:account_id>/members/<int:member_id>/roles/": Rule(
        action=Action.MANAGE_LICENSES, probes=(Probe("POST", data=lambda s: {"organizer": "1"}),)),
    "billing/<int:account_id>/members/<int:member_id>/remove/": Rule(
        action=Action.MANAGE_LICENSES, probes=(POST,)),
    "billing/<int:account_id>/invitations/<int:invitation_id>/revoke/": Rule(
        action=Action.MANAGE_LICENSES, probes=(POST,)),
    "invitations/<str:token>/": Rule(public=True),
    # Webinars (webinars/urls.py): any member sees the list; organizers schedule and edit.
    "billing/<int:account_id>/webinars/": Rule(action=Action.VIEW_ACCOUNT),
    "billing/<int:account_id>/webinars/new/": Rule(action=Action.HOST_WEBINARS, probes=(
        GET, Probe("POST", data=webinar_body))),
    "billing/<int:account_id>/webinars/<int:webinar_id>/edit/": Rule(
        action=Action.HOST_WEBINARS, probes=(GET, Probe("POST", data=webinar_body))),
    "billing/<int:account_id>/webinars/<int:webinar_id>/cancel/": Rule(
        action=Action.HOST_WEBINARS, probes=(POST,)),
    "webinars/<str:public_id>/": Rule(public=True, probes=(GET, Probe("POST", data=lambda s: {
        "name": "Visitor", "email": f"visitor-{s.label}@example.com"}))),
    "billing/<int:account_id>/support/": Rule(action=Action.MANAGE_BILLING, probes=(
        GET, Probe("POST", data=lambda s: {"kind": "billing_question",
                                           "message": "A question"}))),
    "billing/<int:account_id>/details/": Rule(action=Action.MANAGE_BILLING, probes=(
        GET, Probe("POST", data=lambda s: {"name": f"Matrix {s.label}", "country": "FR",
                                           "billing_address": "", "vat_number": "",
                                           "billing_email": "", "time_zone": "UTC"}))),
    "billing/<int:account_id>/support/<int:request_id>/": Rule(
        action=Action.MANAGE_BILLING, probes=(GET, Probe("POST", data=lambda s: {
            "message": "A reply"}))),
}


# --- enumerating the URL patterns -------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One URL pattern of the project, with what it takes to build a URL that reaches it."""

    route: str  # as Django prints it (ResolverMatch.route)
    formats: tuple[tuple[str, tuple[str, ...]], ...]  # per nested pattern: "%(name)s" format, names

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(name for _, names in self.formats for name in names)

    @property
    def kind(self) -> str:
        if self.route.startswith(CONSOLE):
            return "console"
        return "api" if self.route.startswith(API) else "page"

    @property
    def rule(self) -> Rule:
        if self.route.startswith(PUBLIC_PREFIXES):
            return Rule(public=True)
        if self.kind == "console" and self.route not in ACCESS:
            return Rule()
        if self.route not in ACCESS:
            pytest.fail(f"{self.route!r} has no row in ACCESS: declare who may reach it (see "
                        "the docstring of tests/app/test_authorization_matrix.py)", pytrace=False)
        return ACCESS[self.route]

    def url(self, side: Side) -> str:
        """The concrete URL naming ``side``'s objects; checks it resolves to this very pattern."""
        missing = [name for name in self.params if name not in PARAMETERS]
        if missing:
            pytest.fail(f"{self.route!r}: no filler for parameter(s) {missing}; add them to "
                        "PARAMETERS in tests/app/test_authorization_matrix.py", pytrace=False)
        values = {name: str(PARAMETERS[name](side)) for name in self.params}
        url = "/" + "".join(fmt % {n: values[n] for n in names} for fmt, names in self.formats)
        reached = resolve(url.split("?")[0]).route
        assert reached == self.route, (
            f"{url} reaches {reached!r}, not {self.route!r}: change the PARAMETERS fillers"
        )
        return url


def _join(route: str, piece: str) -> str:
    # What django.urls.URLResolver does to build ResolverMatch.route.
    return piece if not route else route + piece.removeprefix("^")


def _walk(patterns: list[Any], route: str = "", formats: tuple = ()) -> Iterator[Route]:
    for pattern in patterns:
        fmt, names = normalize(pattern.pattern.regex.pattern)[0]
        here = (*formats, (fmt, tuple(names)))
        joined = _join(route, str(pattern.pattern))
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, joined, here)
        else:
            assert isinstance(pattern, URLPattern)
            yield Route(joined, here)


def all_routes() -> list[Route]:
    """Every URL pattern of the project, once each (ninja repeats a path for each method)."""
    seen: dict[str, Route] = {}
    for found in _walk(get_resolver().url_patterns):
        seen.setdefault(found.route, found)
    return list(seen.values())


@functools.cache
def api_methods() -> dict[str, list[str]]:
    """Route → the HTTP methods the OpenAPI document lists for it."""
    methods = {}
    for path, operations in api_v1.get_openapi_schema()["paths"].items():
        route = re.sub(r"\{(\w+)\}", r"<\1>", path.lstrip("/"))
        methods[route] = [m.upper() for m in operations]
    return methods


ROUTES = all_routes()


def routes_where(predicate: Callable[[Route], bool]) -> list[Any]:
    return [pytest.param(r, id=r.route or "(home)") for r in ROUTES if _safe(predicate, r)]


def _safe(predicate: Callable[[Route], bool], route: Route) -> bool:
    try:
        return predicate(route)
    except pytest.fail.Exception:  # a route without a row: test_every_route_is_declared says so
        return False


# --- making the requests --------------------------------------------------------------------


def probes_of(route: Route) -> tuple[Probe, ...]:
    rule = route.rule
    if rule.probes:
        return rule.probes
    if route.kind == "api":
        return tuple(Probe(m) for m in api_methods().get(route.route, ["GET"]))
    return (GET,)


def send(client: Client, route: Route, probe: Probe, side: Side, token: str | None = None):
    """Make ``probe`` on ``route`` built with ``side``'s objects, as ``client`` (and ``token``)."""
    return prepare(client, route, probe, side, token)()


def prepare(client: Client, route: Route, probe: Probe, side: Side, token: str | None = None):
    """:func:`send`'s request, built (the objects its URL and data name made) but not yet sent."""
    url = route.url(side)
    extra: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    if probe.query is not None:
        extra["query_params"] = probe.query(side)
    if probe.headers is not None:
        extra.update(probe.headers(side))
    data = probe.data(side) if probe.data is not None else None
    method = getattr(client, probe.method.lower())
    if route.kind == "api" and probe.method != "GET":
        return functools.partial(method, url, json.dumps(data or {}),
                                 content_type="application/json", **extra)
    return functools.partial(method, url, data or {}, **extra)


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def names_the_side(route: Route, probe: Probe) -> bool:
    return bool(route.params) or probe.query is not None or probe.names_account


def names_an_account(route: Route) -> bool:
    return any(names_the_side(route, probe) for probe in probes_of(route))


def console_redirect_ok(route: Route, location: str) -> bool:
    if route.route in CONSOLE_REDIRECTS:
        return location == CONSOLE_REDIRECTS[route.route]
    return location.startswith(CONSOLE_LOGIN)


def content_of(response) -> bytes:
    """The body, read once also for streamed responses (a CSV export)."""
    if getattr(response, "streaming", False):
        if not hasattr(response, "_matrix_body"):
            response._matrix_body = b"".join(response.streaming_content)
        return response._matrix_body
    return response.content


def describe(response) -> str:
    location = response.get("Location", "")
    return f"{response.status_code} {location} {content_of(response)[:200]!r}"


# --- the checks ---------------------------------------------------------------------------------


def a_user(client: Client) -> int:
    """The id of the user signed in on ``client`` (its session's)."""
    return int(client.session["_auth_user_id"])


def assert_denial_logged(caplog: pytest.LogCaptureFixture, response: Any, user_id: int | None,
                         where: str) -> None:
    """The refusal wrote its one ``denied`` line on the security log: status, route, user."""
    denials = [r for r in caplog.records if r.name == "prorata.security"]
    assert len(denials) == 1, f"{where}: {len(denials)} security log lines"
    (record,) = denials
    assert record.levelname == "WARNING" and record.status == response.status_code, where
    if user_id is not None:
        assert record.user_id == user_id, where


def test_every_route_is_declared_and_fillable():
    problems = []
    for route in ROUTES:
        if route.kind != "console" and not route.route.startswith(PUBLIC_PREFIXES):
            if route.route not in ACCESS:
                problems.append(f"{route.route!r} has no row in ACCESS")
            elif "account_id" in route.params and ACCESS[route.route].action is None:
                problems.append(f"{route.route!r} names an account: declare its Rule(action=...)")
        missing = [p for p in route.params if p not in PARAMETERS]
        if missing:
            problems.append(f"{route.route!r} has parameter(s) {missing} missing from PARAMETERS")
    known = {r.route for r in ROUTES}
    problems += [f"ACCESS row {route!r} matches no URL pattern any more: remove or fix it"
                 for route in ACCESS if route not in known]
    assert not problems, ("Declare every URL in tests/app/test_authorization_matrix.py "
                          "(see its docstring):\n  " + "\n  ".join(problems))


def test_the_walk_sees_pages_the_api_and_the_console():
    routes = {r.route for r in ROUTES}
    assert {"", "api/v1/me", "api/v1/accounts/<account_id>", "console/",
            "profile/tokens/"} <= routes


@pytest.mark.parametrize("route", routes_where(lambda r: True))
def test_anonymous_visitors_are_sent_to_sign_in(sides, route, caplog):
    a, _ = sides
    for probe in probes_of(route):
        caplog.clear()
        response = send(Client(), route, probe, a)
        where = f"anonymous {probe.method} {route.url(a)} → {describe(response)}"
        if route.rule.public:
            assert response.status_code < 500, where
            assert response.status_code not in (401, 403), where
        elif route.kind == "api":
            assert response.status_code == 401, where
            assert response.json()["code"] == "not_authenticated", where
            assert_denial_logged(caplog, response, None, where)
        elif route.kind == "console":
            assert response.status_code == 302, where
            assert console_redirect_ok(route, response["Location"]), where
        else:
            assert response.status_code == 302, where
            assert response["Location"].startswith(f"{resolve_url(settings.LOGIN_URL)}?next="), where


@pytest.mark.parametrize("route", routes_where(
    lambda r: not r.rule.public and r.kind != "console" and not r.rule.product_key
    and not r.rule.operator))
def test_another_accounts_objects_are_404_for_a_member_holding_every_role(sides, route, caplog):
    a, b = sides
    auths = [("principal, session", signed_in(a.principal), None),
             ("billing contact, session", signed_in(a.members["billing_contact"]), None)]
    if route.kind == "api":
        auths.append(("principal, API token", Client(), a.token_secret))
    for probe in probes_of(route):
        for how, client, token in auths:
            caplog.clear()
            response = send(client, route, probe, b, token=token)
            where = f"A's {how}: {probe.method} {route.url(b)} → {describe(response)}"
            if names_the_side(route, probe):
                assert response.status_code == 404, where
                if route.kind == "api":
                    assert response.json()["code"] == "not_found", where
                assert_denial_logged(caplog, response, None if token else a_user(client), where)
            else:
                assert response.status_code < 400, where
            body = content_of(response).decode(errors="replace")
            for marker in b.markers:
                assert marker not in body, f"{where}: shows B's {marker!r}"


@pytest.mark.parametrize("route", routes_where(
    lambda r: not r.rule.public and r.kind != "console" and names_an_account(r)
    and not r.rule.product_key and not r.rule.operator))
def test_the_same_urls_work_for_their_own_account(sides, route):
    a, _ = sides
    client = signed_in(a.principal)
    for probe in probes_of(route):
        if not names_the_side(route, probe):
            continue
        response = send(client, route, probe, a)
        where = f"A's principal {probe.method} {route.url(a)} → {describe(response)}"
        assert response.status_code < 400, where


@pytest.mark.parametrize("route", routes_where(lambda r: r.kind == "console" and not r.rule.public))
def test_customers_get_no_access_to_the_console(sides, route):
    a, b = sides
    for side in (a, b):
        response = send(signed_in(a.principal), route, GET, side)
        where = f"customer GET {route.url(side)} → {describe(response)}"
        assert response.status_code == 302, where
        assert console_redirect_ok(route, response["Location"]), where


@pytest.mark.parametrize("route", routes_where(
    lambda r: r.rule.action not in (None, Action.VIEW_ACCOUNT)))
def test_a_member_without_the_role_gets_403_not_data(sides, route, caplog):
    a, _ = sides
    lacking = [(role, user) for role, user in a.members.items()
               if not can(user, route.rule.action, a.account)]
    assert lacking, f"every member may {route.rule.action}: is the row's action right?"
    for role, member in lacking:
        client = signed_in(member)
        for probe in probes_of(route):
            caplog.clear()
            response = send(client, route, probe, a)
            where = f"A's {role} member {probe.method} {route.url(a)} → {describe(response)}"
            assert response.status_code == 403, where
            assert_denial_logged(caplog, response, member.pk, where)
            if route.kind == "api":
                assert response.json()["code"] == "forbidden", where
            body = content_of(response).decode(errors="replace")
            assert a.account.billing_address not in body, where


def test_a_member_without_the_billing_role_sees_no_billing_data(sides):
    a, _ = sides
    for role in ("admin", "organizer", "none"):
        body = signed_in(a.members[role]).get(f"/api/v1/accounts/{a.account.pk}").json()
        assert body["billing"] is None, role
        assert a.account.billing_address not in json.dumps(body), role
    body = signed_in(a.members["billing_contact"]).get(f"/api/v1/accounts/{a.account.pk}").json()
    assert body["billing"]["billing_address"] == a.account.billing_address


def test_the_entitlement_key_reads_entitlements_only(sides):
    """A product key answers on the product-key routes and is refused (401) everywhere else in
    the API; users' sessions and personal tokens are refused (401) on the product-key routes."""
    a, _ = sides
    _, key = entitlement_key_create(name="matrix product", actor=None)
    for route in ROUTES:
        if route.kind != "api" or route.rule.public:
            continue
        for probe in probes_of(route):
            with_key = send(Client(), route, probe, a, token=key)
            where = f"product key {probe.method} {route.url(a)} → {describe(with_key)}"
            if route.rule.product_key:
                assert with_key.status_code == 200, where
                for client, token in ((signed_in(a.principal), None), (Client(), a.token_secret)):
                    refused = send(client, route, probe, a, token=token)
                    assert refused.status_code == 401, f"a user's credential: {describe(refused)}"
            else:
                assert with_key.status_code == 401, where


@pytest.mark.parametrize("route", routes_where(lambda r: r.rule.operator))
def test_operator_routes_take_only_an_operator_key(sides, route):
    """Customers — a member holding every role, by session or personal token, naming their own
    account or another — get 401 and no data; an operator API key is let in (whatever the
    route then says of a body without its Idempotency-Key, never a 401, 403 or 500)."""
    from prorata.api.services import operator_key_create

    a, b = sides
    _row, key = operator_key_create(name="matrix", scope="read_write",
                                    actor=User.objects.create_user("op@matrix.example", "pw"))
    for probe in probes_of(route):
        for side in (a, b):
            for how, client, token in (("session", signed_in(a.principal), None),
                                       ("personal token", Client(), a.token_secret)):
                response = send(client, route, probe, side, token=token)
                where = f"A's {how}: {probe.method} {route.url(side)} → {describe(response)}"
                assert response.status_code == 401, where
                assert response.json()["code"] in ("not_authenticated", "invalid_token"), where
                body = content_of(response).decode(errors="replace")
                assert not any(m in body for m in side.markers), where
            response = send(Client(), route, probe, side, token=key)
            where = f"operator key: {probe.method} {route.url(side)} → {describe(response)}"
            assert response.status_code not in (401, 403) and response.status_code < 500, where


# --- CSRF: every state-changing request of a signed-in browser needs its token -------------------

#: Views that take POSTs without Django's CSRF token, each with what authenticates it instead:
#: the sandbox gateway's card form (a provider's host; its card token is single-use) and the
#: payment providers' webhooks (a signature over the body). Any other exempt view fails below.
CSRF_EXEMPT = {
    "sandbox-gateway/v1/tokens": "the sandbox provider's own card form: no session, a one-use token",
    "sandbox-gateway/v1/challenge/<str:secret>":
        "the sandbox bank's 3-D Secure page: the secret in its address is its credential",
    "payments/stripe/v1/webhook": "Stripe's webhook: the Stripe-Signature header over the body",
}


def _rows() -> dict[str, int]:
    from django.apps import apps

    return {m._meta.db_table: m._base_manager.count() for m in apps.get_models()
            if m._meta.db_table not in {"django_session", "accounts_signinfailure"}}


@pytest.mark.parametrize("route", routes_where(
    lambda r: r.kind != "console" and not r.route.startswith(PUBLIC_PREFIXES)
    and r.route not in CSRF_EXEMPT and not r.rule.product_key and not r.rule.operator
    and any(p.method != "GET" for p in probes_of(r))))
def test_a_state_change_without_its_csrf_token_is_refused_and_changes_nothing(sides, route, caplog):
    # The signed-in principal, with valid data for the action: the only thing missing is the
    # token a page of Prorata would have put in the form (or the API's X-CSRFToken header).
    a, _ = sides
    client = Client(enforce_csrf_checks=True)
    client.force_login(a.principal)
    for probe in probes_of(route):
        if probe.method == "GET":
            continue
        request = prepare(client, route, probe, a)
        before = _rows()
        caplog.clear()
        response = request()
        where = f"{probe.method} {route.url(a)} without a CSRF token → {describe(response)}"
        assert response.status_code == 403, where
        assert _rows() == before, where
        assert_denial_logged(caplog, response, a.principal.pk, where)


def test_no_view_skips_the_csrf_check_unless_declared():
    # Console actions included (the matrix probes them only as a customer): a view marked
    # csrf_exempt is found on its callback, wherever it is mounted.
    exempt = set()
    for pattern, path in _callbacks(get_resolver().url_patterns):
        if getattr(pattern.callback, "csrf_exempt", False) and not path.startswith(API):
            exempt.add(path)
    assert exempt == set(CSRF_EXEMPT), (
        f"views without the CSRF check: {sorted(exempt)}; declare each in CSRF_EXEMPT with what "
        "authenticates it instead, or remove @csrf_exempt")


def _callbacks(patterns: list[Any], prefix: str = "") -> Iterator[tuple[URLPattern, str]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _callbacks(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield pattern, prefix + str(pattern.pattern)
