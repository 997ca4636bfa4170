"""The console's authorization matrix for actions (the GET side is test_console_matrix.py): every
console action that writes, posted by a support agent, a corporate advisor (who advises account A,
not B), an operator and a superuser, on A's objects and on B's.

For each role, action and account: what the role may do is done (the action answers with its
redirect and leaves its audit row); what it may not is refused (403, 404, or Django admin's
redirect for an object outside the role's rows) and leaves no trace (no audit row, no row of any
model the actions write, no request's status or assignee changed). DESIGN §5 and issue 14: a support agent cannot
change the catalog, an advisor acts only on the accounts they advise, an operator cannot refund
(nor answer, order, credit or record a transfer), a superuser may do everything.

Every action route of the console must have a row in ACTIONS: a console URL that takes a POST and
is not listed here (or declared a read-only page) fails :func:`test_every_console_action_is_listed`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from prorata.accounts.models import AuditEntry, User
from prorata.billing.models import Document, DocumentKind, DocumentStatus
from prorata.catalog.models import Product
from prorata.console.models import StaffRefund, StaffRefundStatus
from prorata.subscriptions.models import Subscription
from prorata.subscriptions.selectors import order_quote
from prorata.support.services import support_request_create
from tests.app.console.test_console_matrix import CONSOLE_ROUTES
from tests.app.console_auth import console_login
from tests.app.subscriptions.support import buy, card, customer, staff

pytestmark = pytest.mark.django_db

ROLES = ["support_agent", "corporate_advisor", "operator", "superuser"]
_keys = itertools.count(1)


def _key() -> str:
    return f"matrix-key-{next(_keys)}"


@dataclass
class Side:
    label: str
    account: Any
    person: User
    invoice: Document
    request: Any

    def open_invoice(self) -> Document:
        return Document.objects.filter(account=self.account, kind=DocumentKind.INVOICE,
                                       status=DocumentStatus.OPEN).order_by("id").first()


@pytest.fixture
def world(clock, demo_catalog):
    advisor = staff("advisor@prorata.example", "corporate_advisor")
    sides = {}
    for label, corporate in (("A", True), ("B", False)):
        account, person = customer(f"Acts {label}", "FR", f"p-{label}@acts.example",
                                   currency="EUR", corporate_advisor=advisor if corporate else None)
        if corporate:
            # two net-30 invoices: one to record a transfer on, one left open
            invoice = buy(account, advisor, "pro", "monthly", 1, by_staff=True).invoice
        else:
            invoice = buy(account, person, "pro", "monthly", 1, card_token=card()).invoice
        request = support_request_create(account=account, user=person, kind="other",
                                         message=f"Help {label}")
        sides[label] = Side(label, account, person, invoice, request)
    return {"advisor": advisor, "sides": sides}


def _order_form(side: Side, user: User) -> dict[str, str]:
    """The summary's fingerprint as an agent sees it (the role under test may not quote)."""
    quoter = (User.objects.filter(email="quoter@prorata.example").first()
              or staff("quoter@prorata.example", "support_agent"))
    subscription = Subscription.objects.get(account=side.account)
    quote = order_quote(account=side.account, user=quoter, product_code="webinar",
                        plan_code="pro", cycle_code="monthly",
                        quantity=subscription.quantity + 1, by_staff=True)
    return {"plan": "pro", "cycle": "monthly", "quantity": str(subscription.quantity + 1),
            "unit_price": "", "reason": "Matrix", "key": _key(),
            "fingerprint": quote.fingerprint}


def _awaiting(side: Side, user: User) -> StaffRefund:
    """A refund awaiting approval, asked by someone else (the row as the service makes it)."""
    other = staff(f"asker-{next(_keys)}@prorata.example", "support_agent")
    return StaffRefund.objects.create(
        account=side.account, invoice=side.invoice, currency="EUR", amount=100,
        status=StaffRefundStatus.AWAITING_APPROVAL, reason="big", idempotency_key=_key(),
        requested_by=other, created_at=side.invoice.issued_at)


@dataclass
class Act:
    """One console action: its URL and form for a side; who may do it, per side (None: the
    action does not apply to that side's account, e.g. a card refund of a corporate account)."""

    route: str
    url: Callable[[Side, User], str]
    data: Callable[[Side, User], dict[str, Any]]
    allowed: dict[str, tuple[str, ...] | None]


MONEY_A = ("support_agent", "corporate_advisor", "superuser")  # A: advised by the advisor
MONEY_B = ("support_agent", "superuser")

ACTIONS: dict[str, Act] = {
    "support reply": Act(
        "console/support/supportrequest/<path:object_id>/change/",
        lambda s, u: f"/console/support/supportrequest/{s.request.pk}/change/",
        lambda s, u: {"action": "reply", "message": "An answer"},
        {"A": MONEY_A, "B": MONEY_B}),
    "support assign to me": Act(
        "console/support/supportrequest/<path:object_id>/change/",
        lambda s, u: f"/console/support/supportrequest/{s.request.pk}/change/",
        lambda s, u: {"action": "assign"}, {"A": MONEY_A, "B": MONEY_B}),
    "support resolve": Act(
        "console/support/supportrequest/<path:object_id>/change/",
        lambda s, u: f"/console/support/supportrequest/{s.request.pk}/change/",
        lambda s, u: {"action": "resolve"}, {"A": MONEY_A, "B": MONEY_B}),
    "support reply and resolve": Act(
        "console/support/supportrequest/<path:object_id>/change/",
        lambda s, u: f"/console/support/supportrequest/{s.request.pk}/change/",
        lambda s, u: {"action": "reply_resolve", "message": "Done"},
        {"A": MONEY_A, "B": MONEY_B}),
    "queue action assign to me": Act(
        "console/support/supportrequest/",
        lambda s, u: "/console/support/supportrequest/",
        lambda s, u: {"action": "assign_to_me", "_selected_action": [str(s.request.pk)]},
        {"A": MONEY_A, "B": MONEY_B}),
    "refund": Act(
        "console/console/staffrefund/new/<int:invoice_id>/",
        lambda s, u: f"/console/console/staffrefund/new/{s.invoice.pk}/",
        lambda s, u: {"amount": "1.00", "reason": "Matrix", "key": _key()},
        {"A": None, "B": MONEY_B}),  # A pays by transfer: nothing was paid by card
    "approve a refund": Act(
        "console/console/staffrefund/<int:refund_id>/decide/",
        lambda s, u: f"/console/console/staffrefund/{_awaiting(s, u).pk}/decide/",
        lambda s, u: {"action": "approve"}, {"A": None, "B": MONEY_B}),
    "turn down a refund": Act(
        "console/console/staffrefund/<int:refund_id>/decide/",
        lambda s, u: f"/console/console/staffrefund/{_awaiting(s, u).pk}/decide/",
        lambda s, u: {"action": "reject", "reason": "No"}, {"A": None, "B": MONEY_B}),
    "credit adjustment": Act(
        "console/console/creditadjustment/new/<int:account_id>/",
        lambda s, u: f"/console/console/creditadjustment/new/{s.account.pk}/",
        lambda s, u: {"amount": "1.00", "reason": "Matrix", "key": _key()},
        {"A": MONEY_A, "B": MONEY_B}),
    "order on the customer's behalf": Act(
        "console/accounts/account/<int:account_id>/order/<slug:product_code>/",
        lambda s, u: f"/console/accounts/account/{s.account.pk}/order/webinar/",
        _order_form, {"A": MONEY_A, "B": MONEY_B}),
    "record a bank transfer": Act(
        "console/billing/document/<int:document_id>/transfer/",
        lambda s, u: f"/console/billing/document/{s.open_invoice().pk}/transfer/",
        lambda s, u: {"amount": "1.00", "reference": f"TR-{next(_keys)}"},
        # the advisor (and a superuser) manage a corporate account's billing; agents do not
        {"A": ("corporate_advisor", "superuser"), "B": None}),
    "change the catalog": Act(
        "console/catalog/product/<path:object_id>/change/",
        lambda s, u: f"/console/catalog/product/{Product.objects.get(code='webinar').pk}/change/",
        lambda s, u: {"code": "webinar", "name": f"Webinar {next(_keys)}"},
        {"A": ("operator", "superuser")}),
    "set the staff limits": Act(
        "console/console/stafflimits/add/",
        lambda s, u: "/console/console/stafflimits/add/",
        lambda s, u: {"currency": f"X{next(_keys):02d}"[:3], "refund_approval_above": "100000",
                      "agent_credit_cap": "5000", "advisor_credit_cap": "10000"},
        {"A": ("operator", "superuser")}),
}

#: Console routes whose POST is not an action of a customer's account or of the catalog here:
#: Django's own pages (sign-out, password change), the second factor's enrolment (tested in
#: test_second_factor.py), the operators' API keys and webhooks (tested in their apps' tests),
#: and the generic add/change/delete forms of models whose admin refuses them to every staff
#: role but superusers (read-only admins; the GET matrix opens them).
NOT_ACTIONS_HERE = {"console/2fa/setup/", "console/password_change/",
                    "console/password_change/done/", "console/jsi18n/"}


def trace() -> tuple[Any, ...]:
    """What any console action leaves: rows of every model they write, and the requests' state."""
    from prorata.billing.models import LedgerEntry, Payment
    from prorata.console.models import CreditAdjustment, StaffLimits
    from prorata.subscriptions.models import Order
    from prorata.support.models import SupportMessage, SupportRequest

    return (AuditEntry.objects.count(), SupportMessage.objects.count(),
            list(SupportRequest.objects.order_by("id").values_list("status", "assignee_id")),
            StaffRefund.objects.count(), list(StaffRefund.objects.values_list("status")),
            CreditAdjustment.objects.count(), Payment.objects.count(), Order.objects.count(),
            LedgerEntry.objects.count(), StaffLimits.objects.count(),
            list(Product.objects.values_list("name")))


def refused(response, url: str) -> bool:
    """403 or 404; or Django admin's own refusals of an object outside the role's queryset: the
    redirect to the console home ("does not exist"), or a bulk action that selected nothing,
    back to its list."""
    if response.status_code in (403, 404):
        return True
    return response.status_code == 302 and response["Location"] in ("/console/", url)


def _user(role: str, world) -> User:
    if role == "corporate_advisor":
        return world["advisor"]
    if role == "superuser":
        return User.objects.create_superuser("root@prorata.example", "pw")
    return staff(f"{role}@prorata.example", role)


@pytest.mark.parametrize("role", ROLES)
def test_every_console_action_for_every_staff_role(world, role):
    user = _user(role, world)
    client = console_login(Client(), user)
    problems = []
    for name, act in ACTIONS.items():
        for label, allowed in act.allowed.items():
            if allowed is None:
                continue
            side = world["sides"][label]
            url = act.url(side, user)
            data = act.data(side, user)
            audits, before = AuditEntry.objects.count(), trace()
            response = client.post(url, data)
            wrote = AuditEntry.objects.count() - audits
            where = f"{role} {name} on {label}: POST {url} → {response.status_code}"
            if role in allowed:
                if response.status_code != 302 or wrote == 0 or trace() == before:
                    problems.append(f"{where}, {wrote} audit row(s): should be done")
            elif not refused(response, url) or wrote or trace() != before:
                problems.append(f"{where}, {wrote} audit row(s): should be refused")
    assert not problems, "\n".join(problems)


def test_every_console_action_is_listed():
    """The action routes above exist, and every console route that ends in an action's shape
    (new/, decide/, transfer/, order/) has a row: a new money action cannot go untested."""
    routes = {route.route for route in CONSOLE_ROUTES}
    listed = {act.route for act in ACTIONS.values()}
    assert listed <= routes, f"no such console route: {sorted(listed - routes)}"
    shaped = {route for route in routes
              if route.endswith(("/decide/", "/transfer/", "/order/<slug:product_code>/"))
              or "/new/" in route}
    assert shaped <= listed, f"list these console actions in ACTIONS: {sorted(shaped - listed)}"
