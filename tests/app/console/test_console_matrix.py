"""The console's authorization matrix per staff role: every console URL, found at run time, opened
by a support agent, a corporate advisor (who advises account A, not B), an operator and a
superuser (the actions' POSTs: test_console_actions_matrix.py).

For each role and URL: never a 500; an operator never sees a customer's data (neither account's
markers, on any page); an advisor never sees account B's (not theirs) and reaches none of B's
objects; what a role may open (the pages it works on) answers 200. A URL added later is walked
too: it must keep these properties without being declared.
"""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client

from prorata.accounts.models import Account, AuditEntry
from prorata.support.models import SupportRequest
from prorata.support.services import support_request_create
from tests.app.console_auth import console_login
from tests.app.subscriptions.support import buy, card, customer, staff
from tests.app.test_authorization_matrix import ROUTES

pytestmark = pytest.mark.django_db

CONSOLE_ROUTES = [r for r in ROUTES if r.kind == "console"
                  and r.route not in ("console/logout/", "console/login/")]

#: Pages each role works on: they must open (200) for it, with A's objects.
WORKS_ON = {
    "support_agent": {"console/", "console/support/supportrequest/",
                      "console/support/supportrequest/<path:object_id>/change/",
                      "console/accounts/account/<int:account_id>/overview/",
                      "console/billing/document/", "console/billing/document/<int:document_id>/pdf/",
                      "console/console/staffrefund/new/<int:invoice_id>/",
                      "console/console/creditadjustment/new/<int:account_id>/",
                      "console/accounts/account/<int:account_id>/order/<slug:product_code>/"},
    "corporate_advisor": {"console/", "console/support/supportrequest/",
                          "console/support/supportrequest/<path:object_id>/change/",
                          "console/accounts/account/<int:account_id>/overview/",
                          "console/billing/document/",
                          "console/accounts/account/<int:account_id>/order/<slug:product_code>/"},
    "operator": {"console/", "console/catalog/plan/", "console/catalog/price/",
                 "console/console/stafflimits/", "console/accounts/auditentry/",
                 "console/api/operatorkey/", "console/api/operatorkey/add/"},
}
#: A superuser works on everything the roles do, and on the staff's second-factor devices.
WORKS_ON["superuser"] = set().union(*WORKS_ON.values()) | {
    "console/otp_totp/totpdevice/", "console/otp_static/staticdevice/"}


@pytest.fixture
def world(clock, demo_catalog):
    advisor = staff("advisor@prorata.example", "corporate_advisor")
    sides = {}
    for label, corporate in (("a", True), ("b", False)):
        account, person = customer(f"Matrix {label.upper()} Qz{label}", "FR",
                                   f"person-{label}@matrix.example", currency="EUR",
                                   corporate_advisor=advisor if corporate else None)
        if corporate:
            invoice = buy(account, advisor, "pro", "monthly", 1, by_staff=True).invoice
        else:
            invoice = buy(account, person, "pro", "monthly", 1, card_token=card()).invoice
        request = support_request_create(account=account, user=person, kind="other",
                                         message=f"Secret of {label} Qz{label}")
        sides[label] = {"account": account, "person": person, "invoice": invoice,
                        "request": request,
                        "markers": [account.name, person.email, f"Secret of {label} Qz{label}"]}
    return {"advisor": advisor, "sides": sides}


def object_for(route: str, side: dict) -> object:
    """The side's object for a model route ``console/<app>/<model>/...``."""
    parts = route.split("/")
    label = f"{parts[1]}.{parts[2]}" if len(parts) > 2 else ""
    return {"accounts.account": side["account"], "accounts.user": side["person"],
            "billing.document": side["invoice"], "support.supportrequest": side["request"],
            "accounts.auditentry": AuditEntry.objects.filter(account=side["account"]).first(),
            }.get(label)


def url_of(route, side: dict) -> str | None:
    values = {}
    for name in route.params:
        if name in ("account_id",):
            values[name] = side["account"].pk
        elif name in ("document_id", "invoice_id"):
            values[name] = side["invoice"].pk
        elif name == "product_code":
            values[name] = "webinar"
        elif name == "object_id":
            found = object_for(route.route, side)
            if found is None:
                return None  # a model of no account: the same for both sides, checked with A
            values[name] = found.pk
        elif name == "content_type_id":
            values[name] = ContentType.objects.get_for_model(Account).pk
        elif name == "app_label":
            values[name] = "support"
        elif name == "url":
            values[name] = "no-such-page/"
        else:  # refund_id, pk, id: rows of no customer data here
            values[name] = 999999
    return "/" + "".join(fmt % {n: values[n] for n in names} for fmt, names in route.formats)


@pytest.mark.parametrize("role", ["support_agent", "corporate_advisor", "operator", "superuser"])
def test_every_console_url_for_every_staff_role(world, role):
    from prorata.accounts.models import User

    if role == "superuser":
        user = User.objects.create_superuser("root@prorata.example", "pw")
    else:
        user = world["advisor"] if role == "corporate_advisor" else staff(
            f"{role}@prorata.example", role)
    client = console_login(Client(), user)
    missing = WORKS_ON[role] - {route.route for route in CONSOLE_ROUTES}
    assert not missing, f"no such console route: {sorted(missing)}"  # else never checked
    a, b = world["sides"]["a"], world["sides"]["b"]
    problems = []
    for route in CONSOLE_ROUTES:
        for side_name, side in (("A", a), ("B", b)):
            url = url_of(route, side)
            if url is None or (side_name == "B" and not route.params):
                continue
            response = client.get(url)
            body = response.content.decode(errors="replace")
            where = f"{role} GET {url} ({route.route}) → {response.status_code}"
            if response.status_code >= 500:
                problems.append(f"{where}: server error")
            hidden = {"operator": a["markers"] + b["markers"],
                      "corporate_advisor": b["markers"], "support_agent": [],
                      "superuser": []}[role]
            leaked = [m for m in hidden if m in body]
            if leaked:
                problems.append(f"{where}: shows {leaked}")
            if (role == "corporate_advisor" and side_name == "B" and route.params
                    and response.status_code == 200 and object_for(route.route, b) is not None):
                problems.append(f"{where}: opens B's object")
            if side_name == "A" and route.route in WORKS_ON[role] and response.status_code != 200:
                problems.append(f"{where}: should open")
    assert not problems, "\n".join(problems)
    assert SupportRequest.objects.count() == 2  # GETs changed nothing
