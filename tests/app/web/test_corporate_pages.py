"""A corporate account's pages (S3, S14): they name its advisor, offer a request to them, and never
offer a card: its invoices are paid by bank transfer on payment terms, recorded by the advisor."""

from __future__ import annotations

import pytest
from django.test import Client

from prorata.accounts.models import AuditEntry
from prorata.billing.models import Document, DocumentKind, DocumentStatus, Payment
from prorata.notifications.models import OutboxMessage
from prorata.payments.errors import CardNotForCorporate
from prorata.payments.models import PaymentMethod
from prorata.payments.sandbox import sandbox_token
from prorata.payments.services import payment_method_add
from prorata.support.models import SupportRequest
from prorata_core.periods import utc
from tests.app.api.conftest import ApiClient, token_for
from tests.app.console_auth import console_login
from tests.app.subscriptions.support import card
from tests.app.web.billing_support import bistro_world, globex_world
from tests.app.web.conftest import page_text

pytestmark = pytest.mark.usefixtures("demo_catalog")

def card_form() -> dict[str, str]:
    """An add-card form as posted: the sandbox card form's token, never the card."""
    return {"card_token": sandbox_token(), "make_default": "1"}


def _client(world, language: str = "en") -> Client:
    client = world.client()
    client.cookies["django_language"] = language
    return client


def _open_invoice(world) -> Document:
    return Document.objects.get(account=world.account, kind=DocumentKind.INVOICE)


@pytest.mark.parametrize(("language", "names", "paid_by_transfer", "write"), [
    ("en", "contact Ada Advisor (advisor@prorata.example)", "Paid by bank transfer",
     "Write to Ada Advisor"),
    ("fr", "Ada Advisor (advisor@prorata.example)", "Payé par virement bancaire",
     "Écrire à Ada Advisor"),
])
def test_the_payment_methods_page_offers_no_card_and_names_the_advisor(
        clock, language, names, paid_by_transfer, write):
    globex = globex_world(clock)
    clock.set(utc(2026, 3, 11))
    response = _client(globex, language).get(globex.url + "payment-methods/")
    text = page_text(response)
    assert response.status_code == 200
    assert names in text and paid_by_transfer in text and write in text
    assert "Add a card" not in text and "Ajouter une carte" not in text
    assert 'name="card_token"' not in response.content.decode()
    assert f'href="/billing/{globex.account.pk}/support/#new-request-heading"' in (
        response.content.decode())


def test_a_card_posted_anyway_is_refused_and_nothing_is_saved_or_tokenised(clock):
    globex = globex_world(clock)
    audits = AuditEntry.objects.count()
    response = _client(globex).post(globex.url + "payment-methods/", card_form())
    assert response.status_code == 422
    assert "This account pays its invoices by bank transfer: no card is needed." in (
        page_text(response))
    assert not PaymentMethod.objects.filter(account=globex.account).exists()
    assert AuditEntry.objects.count() == audits
    with pytest.raises(CardNotForCorporate):
        payment_method_add(account=globex.account, token=card(), actor=globex.user)
    assert not PaymentMethod.objects.filter(account=globex.account).exists()


def test_the_api_refuses_a_card_on_a_corporate_account_with_its_code(clock):
    globex = globex_world(clock)
    response = ApiClient(token_for(globex.user)).post(
        f"/api/v1/accounts/{globex.account.pk}/payment-methods",
        {"token": sandbox_token()})
    assert response.status_code == 409
    assert response.json()["code"] == "corporate_pays_by_transfer"
    assert not PaymentMethod.objects.filter(account=globex.account).exists()


def test_a_self_service_account_still_adds_a_card(clock):
    bistro = bistro_world(clock)
    page = page_text(_client(bistro).get(bistro.url + "payment-methods/"))
    assert "Add a card" in page and "Paid by bank transfer" not in page


@pytest.mark.parametrize(("language", "transfer"), [
    ("en", "to pay by bank transfer"), ("fr", "à payer par virement bancaire")])
def test_pay_now_of_a_corporate_invoice_says_bank_transfer_and_never_charges(
        clock, language, transfer):
    globex = globex_world(clock)
    invoice = _open_invoice(globex)
    assert invoice.status == DocumentStatus.OPEN and invoice.amount_due > 0  # net 30
    client = _client(globex, language)
    page = client.get(f"{globex.url}invoices/{invoice.pk}/pay/")
    text = page_text(page)
    assert page.status_code == 200 and transfer in text and invoice.number in text
    assert "Ada Advisor" in text
    for offered in ("Add a card", "Ajouter une carte", "Use another card", "card_token"):
        assert offered not in page.content.decode()
    payments = Payment.objects.count()
    response = client.post(f"{globex.url}invoices/{invoice.pk}/pay/")
    assert response.status_code == 302
    assert Payment.objects.count() == payments
    invoice.refresh_from_db()
    assert invoice.status == DocumentStatus.OPEN


def test_the_checkout_is_not_offered_to_a_corporate_account(clock):
    globex = globex_world(clock)
    client = _client(globex)
    for response in (client.get(globex.url + "checkout/"),
                     client.post(globex.url + "checkout/", {"payment_method": "new", **card_form()})):
        assert response.status_code == 302 and response["Location"] == globex.url
    assert not PaymentMethod.objects.filter(account=globex.account).exists()
    page = client.get(globex.url, follow=True).content.decode()
    assert "Add a card" not in page and 'name="card_token"' not in page


@pytest.mark.parametrize("path", ["", "subscriptions/webinar/modify/"])
def test_my_account_and_modify_offer_a_request_to_the_advisor(clock, path):
    globex = globex_world(clock)
    clock.set(utc(2026, 3, 11))
    response = _client(globex).get(globex.url + path)
    text = page_text(response)
    assert "contact Ada Advisor (advisor@prorata.example)" in text
    assert "Write to Ada Advisor" in text
    assert f"/billing/{globex.account.pk}/support/" in response.content.decode()
    assert "Add a card" not in text


def test_a_request_from_the_support_page_is_addressed_to_the_advisor(clock):
    globex = globex_world(clock)
    advisor = globex.account.advisor
    client = _client(globex)
    page = page_text(client.get(globex.url + "support/"))
    assert "Write to your advisor" in page and "Ada Advisor" in page
    response = client.post(globex.url + "support/", {
        "kind": "billing_question", "message": "Could we move to net 45?"}, follow=True)
    assert "Your request was sent to Ada Advisor, your advisor." in page_text(response)
    request = SupportRequest.objects.get(account=globex.account)
    assert request.assignee == advisor  # in the advisor's own queue, not the shared one
    assert OutboxMessage.objects.get(template="support_to_staff").to == advisor.email
    queue = console_login(Client(), advisor).get(
        f"/console/support/supportrequest/?assignee__id__exact={advisor.pk}").content.decode()
    assert f"#{request.pk}<" in queue
