"""The console's money pages: refund form, approvals, credit adjustment, the operators' limits;
each shows what it will do, acts once per form, and is closed to the roles that may not."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from prorata.accounts.models import AuditEntry
from prorata.billing.models import Refund
from prorata.console.models import CreditAdjustment, StaffLimits, StaffRefund, StaffRefundStatus
from prorata.support.models import SupportRequestStatus
from prorata.support.services import support_request_create
from tests.app.console_auth import console_login
from tests.app.subscriptions.support import assert_books_balance, buy, card, customer, staff

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    console_login(client, user)
    return client


def form_key(page: str) -> str:
    return re.search(r'name="key" value="(\w+)"', page).group(1)


@pytest.fixture
def bistro(clock, demo_catalog):
    account, bea = customer("Bistro Numérique", "FR", "bea@bistro.example", language="fr")
    invoice = buy(account, bea, "pro", "monthly", 2, card_token=card()).invoice
    return account, bea, invoice


def test_an_agent_refunds_part_of_an_invoice_from_its_refund_request(bistro):
    account, bea, invoice = bistro
    request = support_request_create(account=account, user=bea, kind="refund_request",
                                     invoice_id=invoice.pk, message="Trop facturé")
    agent = staff("sam@prorata.example", "support_agent")
    client = signed_in(agent)
    thread = client.get(f"/console/support/supportrequest/{request.pk}/change/").content.decode()
    url = f"/console/console/staffrefund/new/{invoice.pk}/?request={request.pk}"
    assert url.replace("&", "&amp;") in thread  # the request's page links to its refund
    page = client.get(url).content.decode()
    assert "Left to refund: <strong>€549.60</strong>" in page
    data = {"amount": "120.00", "reason": "Billed a seat too many", "key": form_key(page),
            "request": str(request.pk)}
    response = client.post(url.split("?")[0], data)
    assert response.status_code == 302
    assert response["Location"] == f"/console/accounts/account/{account.pk}/overview/"
    again = client.post(url.split("?")[0], data)  # the same form submitted twice
    assert again.status_code == 302
    done = StaffRefund.objects.get()
    assert (done.status, done.amount, done.requested_ip) == (StaffRefundStatus.REFUNDED, 12000,
                                                             "127.0.0.1")
    assert Refund.objects.count() == 1
    request.refresh_from_db()
    assert request.status == SupportRequestStatus.RESOLVED
    overview = client.get(response["Location"]).content.decode()
    assert "CN-2026-000001" in overview and "€120.00" in overview
    assert "Refund (up to €429.60)" in overview
    assert_books_balance()


def test_a_refused_amount_is_said_on_the_form_and_nothing_happens(bistro):
    _account, _bea, invoice = bistro
    client = signed_in(staff("sam@prorata.example", "support_agent"))
    url = f"/console/console/staffrefund/new/{invoice.pk}/"
    key = form_key(client.get(url).content.decode())
    for amount, said in (("600.00", "At most 549.60 EUR can be refunded"),
                         ("12,5x", "amount"), ("-3", "At most")):
        response = client.post(url, {"amount": amount, "reason": "r", "key": key})
        assert response.status_code == 400, amount
        assert said in response.content.decode(), amount
    response = client.post(url, {"amount": "10.00", "reason": "", "key": key})
    assert "Give the reason" in response.content.decode()
    assert not StaffRefund.objects.exists()


def test_a_refund_above_the_threshold_waits_for_another_agent(bistro):
    _account, _bea, invoice = bistro
    StaffLimits.objects.create(currency="EUR", refund_approval_above=10000)
    sam, lea = (staff("sam@prorata.example", "support_agent"),
                staff("lea@prorata.example", "support_agent"))
    url = f"/console/console/staffrefund/new/{invoice.pk}/"
    client = signed_in(sam)
    client.post(url, {"amount": "200.00", "reason": "Outage",
                      "key": form_key(client.get(url).content.decode())})
    waiting = StaffRefund.objects.get()
    assert waiting.status == StaffRefundStatus.AWAITING_APPROVAL
    decide = f"/console/console/staffrefund/{waiting.pk}/decide/"
    assert "another staff member approves it" in client.get(decide).content.decode()
    response = client.post(decide, {"action": "approve"})
    assert response.status_code == 400 and "not the one who asked" in response.content.decode()
    assert signed_in(lea).post(decide, {"action": "approve"}).status_code == 302
    waiting.refresh_from_db()
    assert (waiting.status, waiting.approved_by) == (StaffRefundStatus.REFUNDED, lea)


def test_an_agent_grants_credit_within_their_cap(bistro):
    account, _bea, _invoice = bistro
    client = signed_in(staff("sam@prorata.example", "support_agent"))
    url = f"/console/console/creditadjustment/new/{account.pk}/"
    page = client.get(url).content.decode()
    assert "€100.00" in page  # the agent's default cap
    response = client.post(url, {"amount": "150.00", "reason": "Goodwill",
                                 "key": form_key(page)})
    assert response.status_code == 400 and "100.00 EUR" in response.content.decode()
    assert client.post(url, {"amount": "15.00", "reason": "Goodwill",
                             "key": form_key(page)}).status_code == 302
    assert CreditAdjustment.objects.get().amount == 1500


def test_money_pages_are_closed_to_operators_and_to_other_advisors(bistro):
    account, _bea, invoice = bistro
    operator = signed_in(staff("ops@prorata.example", "operator"))
    advisor = signed_in(staff("advisor@prorata.example", "corporate_advisor"))
    for url in (f"/console/console/staffrefund/new/{invoice.pk}/",
                f"/console/console/creditadjustment/new/{account.pk}/",
                "/console/console/staffrefund/"):
        assert operator.get(url).status_code == 403, url
        assert operator.post(url, {"amount": "1.00", "reason": "r", "key": "k"}).status_code == 403
    for url in (f"/console/console/staffrefund/new/{invoice.pk}/",
                f"/console/console/creditadjustment/new/{account.pk}/"):
        assert advisor.get(url).status_code == 404, url
        assert advisor.post(url, {"amount": "1.00", "reason": "r", "key": "k"}).status_code == 404
    assert not StaffRefund.objects.exists() and not CreditAdjustment.objects.exists()


def test_operators_set_the_limits_and_the_change_is_audited_as_a_setting(clock):
    operator = staff("ops@prorata.example", "operator")
    client = signed_in(operator)
    response = client.post("/console/console/stafflimits/add/", {
        "currency": "EUR", "refund_approval_above": "20000", "agent_credit_cap": "5000",
        "advisor_credit_cap": "10000"})
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="setting.staff_limits.create")
    assert entry.after["refund_approval_above"] == 20000 and entry.actor == operator
    assert "setting.staff_limits.create" in client.get(
        "/console/accounts/auditentry/").content.decode()
    agent = signed_in(staff("sam@prorata.example", "support_agent"))
    assert agent.get("/console/console/stafflimits/").status_code == 403


def test_the_overview_reads_in_words_in_utc_with_a_zero_balance(clock, demo_catalog):
    """The account page of the console: the history in words (not raw JSON), its instants in UTC
    as its headings say (a French account's page was shown in Paris time under "UTC"), and a
    balance of nothing shown as €0.00 (it was "—")."""
    from prorata_core.periods import utc

    clock.set(utc(2026, 3, 1))
    account, bea = customer("Bistro Numérique", "FR", "bea@bistro.example", language="fr")
    buy(account, bea, "lite", "monthly", 5, card_token=card())
    client = signed_in(staff("sam@prorata.example", "support_agent"))
    page = client.get(f"/console/accounts/account/{account.pk}/overview/").content.decode()
    assert "balance <strong>€0.00</strong>" in page
    assert "Lite × 5, monthly · €55.00 per license · status active" in page
    assert "from 2026-03-01 00:00 UTC · to 2026-04-01 00:00 UTC" in page
    history = page.split("<h2>Documents")[0]
    assert "&#x27;plan&#x27;" not in history  # raw JSON stays in the audit rows only
    assert "2026-03-01 00:00</td>" in page  # the history's own column, in UTC too
