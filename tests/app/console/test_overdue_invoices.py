"""Advisors follow up overdue net-30 invoices in the console (S14): the documents list filtered
``?overdue=yes`` and the console home's count show the invoices unpaid after their due date, of
the accounts the reader sees (an advisor: only theirs)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from prorata.billing.models import Document, DocumentKind
from prorata.billing.services import invoice_record_payment
from prorata_core.money import Money
from prorata_core.periods import utc
from tests.app.console_auth import console_login
from tests.app.subscriptions.support import buy, card, customer, staff

pytestmark = pytest.mark.django_db

LIST = "/console/billing/document/?overdue=yes"


def _invoice(account) -> Document:
    return Document.objects.filter(account=account, kind=DocumentKind.INVOICE).latest("id")


@pytest.fixture
def world(clock, demo_catalog):
    ada = staff("ada@prorata.example", "corporate_advisor")
    bo = staff("bo@prorata.example", "corporate_advisor")
    clock.set(utc(2026, 1, 1))
    globex, _ = customer("Globex Qzg", "DE", "hans@globex.example", currency="EUR",
                         corporate_advisor=ada)
    initech, _ = customer("Initech Qzi", "DE", "peter@initech.example", currency="EUR",
                          corporate_advisor=bo)
    paid_corp, _ = customer("Umbrella Qzu", "DE", "u@umbrella.example", currency="EUR",
                            corporate_advisor=ada)
    for account in (globex, initech, paid_corp):
        buy(account, ada if account.advisor == ada else bo, "pro", "annual", 1, by_staff=True)
    invoice_record_payment(invoice=_invoice(paid_corp), reference="TR-9", actor=ada,
                           amount=Money(_invoice(paid_corp).amount_due, "EUR"))
    clock.set(utc(2026, 2, 20))  # due 2026-01-31: 20 days overdue
    later, _ = customer("Later Qzl", "DE", "l@later.example", currency="EUR",
                        corporate_advisor=ada)
    buy(later, ada, "pro", "annual", 1, by_staff=True)  # due 2026-03-22: not yet
    bistro, bea = customer("Bistro Qzb", "FR", "bea@bistro.example", currency="EUR")
    buy(bistro, bea, "pro", "monthly", 1, card_token=card())  # paid by card, no due date
    return {"ada": ada, "bo": bo, "globex": globex, "initech": initech,
            "paid": paid_corp, "later": later, "bistro": bistro}


def _shown(body: str, world) -> set[str]:
    return {name for name in ("globex", "initech", "paid", "later", "bistro")
            if world[name].name in body}


def test_an_advisor_sees_the_overdue_invoices_of_their_accounts_only(world):
    client = console_login(Client(), world["ada"])
    body = client.get(LIST).content.decode()
    assert _shown(body, world) == {"globex"}
    assert _invoice(world["globex"]).number in body and "20 days" in body
    home = client.get("/console/").content.decode()
    assert re.search(r'href="/console/billing/document/\?overdue=yes">Overdue invoices: 1<', home)
    # Bo, the other advisor, sees Initech's and not Globex's
    other = console_login(Client(), world["bo"]).get(LIST).content.decode()
    assert _shown(other, world) == {"initech"}


def test_a_support_agent_sees_every_overdue_invoice(world):
    client = console_login(Client(), staff("sam@prorata.example", "support_agent"))
    assert _shown(client.get(LIST).content.decode(), world) == {"globex", "initech"}
    assert "Overdue invoices: 2<" in client.get("/console/").content.decode()
    # without the filter, the list has the others too (the filter is what removes them)
    assert _shown(client.get("/console/billing/document/").content.decode(), world) == {
        "globex", "initech", "paid", "later", "bistro"}


def test_a_recorded_transfer_takes_the_invoice_off_the_list(world):
    invoice = _invoice(world["globex"])
    invoice_record_payment(invoice=invoice, reference="TR-1", actor=world["ada"],
                           amount=Money(invoice.amount_due, "EUR"))
    client = console_login(Client(), world["ada"])
    assert _shown(client.get(LIST).content.decode(), world) == set()
    assert "Overdue invoices: 0<" in client.get("/console/").content.decode()


def test_operators_see_no_overdue_list(world):
    client = console_login(Client(), staff("ops@prorata.example", "operator"))
    assert client.get(LIST).status_code == 403
    assert "Overdue invoices" not in client.get("/console/").content.decode()
