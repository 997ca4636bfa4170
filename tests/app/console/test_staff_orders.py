"""Changes on the customer's behalf (DESIGN §3 example 3, S13, S14): the billing center's engine,
the order summary first, then the order; the customer is told as if they had ordered."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from prorata.accounts.models import AuditEntry
from prorata.billing.models import DocumentStatus
from prorata.billing.selectors import account_balance
from prorata.notifications.models import OutboxMessage
from prorata.subscriptions.models import Subscription
from prorata.support.models import SupportRequestStatus
from prorata.support.services import support_request_create
from tests.app.console_auth import console_login
from tests.app.subscriptions.support import assert_books_balance, buy, card, customer, staff

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    console_login(client, user)
    return client


def hidden(page: str) -> dict[str, str]:
    form = page[page.index('<form method="post"'):]
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form))


def test_an_agent_downgrades_from_the_request_after_the_order_summary(clock, demo_catalog):
    account, bea = customer("Bistro Numérique", "FR", "bea@bistro.example", language="fr")
    buy(account, bea, "pro", "monthly", 2, card_token=card())
    request = support_request_create(account=account, user=bea, kind="downgrade_request",
                                     message="Lite please", product_code="webinar",
                                     target_plan="lite", target_cycle="monthly",
                                     target_quantity=2)
    agent = staff("sam@prorata.example", "support_agent")
    client = signed_in(agent)
    url = f"/console/accounts/account/{account.pk}/order/webinar/"
    page = client.get(url, {"request": request.pk, "preview": "1"}).content.decode()
    assert "Order summary" in page and "Credit left on the account" in page
    assert Subscription.objects.get().plan.code == "pro"  # a summary changes nothing
    data = hidden(page) | {"reason": f"Support request #{request.pk}"}
    assert data["plan"] == "lite" and data["quantity"] == "2"
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    again = client.post(url, data)  # the same form twice: one order
    assert again.status_code == 302
    subscription = Subscription.objects.get()
    assert (subscription.plan.code, subscription.quantity) == ("lite", 2)
    assert account_balance(account).amount > 0  # the unused Pro time is credit (S8)
    request.refresh_from_db()
    assert request.status == SupportRequestStatus.RESOLVED
    assert "votre abonnement est désormais Lite, 2 licence(s), facturé mensuellement" in (
        request.messages.last().body)
    templates = set(OutboxMessage.objects.filter(to="bea@bistro.example")
                    .values_list("template", flat=True))
    assert {"credit_created", "support_reply"} <= templates
    entry = AuditEntry.objects.get(action="staff.order")
    assert (entry.actor, entry.account, entry.ip) == (agent, account, "127.0.0.1")
    assert AuditEntry.objects.filter(action="staff.order").count() == 1
    assert_books_balance()


def test_without_a_reason_nothing_is_ordered(clock, demo_catalog):
    account, bea = customer("Bistro", "FR", "bea@bistro.example")
    buy(account, bea, "pro", "monthly", 2, card_token=card())
    client = signed_in(staff("sam@prorata.example", "support_agent"))
    url = f"/console/accounts/account/{account.pk}/order/webinar/"
    page = client.get(url, {"plan": "lite", "cycle": "monthly", "quantity": "2",
                            "preview": "1"}).content.decode()
    response = client.post(url, hidden(page) | {"reason": ""})
    assert response.status_code == 400 and "Give the reason" in response.content.decode()
    assert Subscription.objects.get().plan.code == "pro"


def test_an_advisor_orders_enterprise_at_their_price_invoiced_net_30(clock, demo_catalog):
    advisor = staff("advisor@prorata.example", "corporate_advisor")
    account, _gina = customer("Globex", "DE", "gina@globex.example", currency="EUR",
                              corporate_advisor=advisor)
    client = signed_in(advisor)
    url = f"/console/accounts/account/{account.pk}/order/webinar/"
    query = {"plan": "enterprise", "cycle": "annual", "quantity": "10",
             "unit_price": "4800.00", "preview": "1"}
    page = client.get(url, query).content.decode()
    assert "€48,000.00" in page
    assert client.post(url, hidden(page) | {"reason": "Contract 2026"}).status_code == 302
    subscription = Subscription.objects.get()
    assert (subscription.plan.code, subscription.unit_amount) == ("enterprise", 480000)
    invoice = subscription.invoice
    assert invoice.status == DocumentStatus.OPEN
    assert (invoice.due_at - invoice.issued_at).days == 30
    # another advisor, and an operator, cannot
    other = signed_in(staff("other@prorata.example", "corporate_advisor"))
    assert other.get(url, query).status_code == 404
    assert other.post(url, hidden(page) | {"reason": "x"}).status_code == 404
    operator = signed_in(staff("ops@prorata.example", "operator"))
    assert operator.get(url, query).status_code == 403
    assert Subscription.objects.count() == 1
