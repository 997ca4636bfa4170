"""3-D Secure at renewal (issue 17): the billing run charges off session, so a card whose bank asks
for an authentication (the sandbox's 4000 0027 6000 3184) cannot be charged then. The payment and
the renewal say ``requires_action`` (not a refusal), the customer is e-mailed (EN/FR, text and
HTML) to confirm the payment on Pay now, where "Authenticate and pay" goes through the bank's
challenge and pays the invoice (the renewal settled, dunning over, the receipt). A customer who
fails or abandons the authentication leaves the dunning schedule exactly as it was: the project
clock is driven through the whole schedule to the expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings

from prorata.billing.models import (
    Document,
    DocumentKind,
    DocumentStatus,
    LedgerEntry,
    LedgerKind,
    Payment,
    PaymentStatus,
)
from prorata.billing.selectors import account_balance
from prorata.jobs.billing_run import bill_run
from prorata.jobs.models import Renewal, RenewalStatus
from prorata.notifications.models import OutboxMessage
from prorata.notifications.outbox import render_message
from prorata.payments.models import PaymentMethod, SandboxCharge
from prorata.payments.services import payment_method_add
from prorata.subscriptions.models import Subscription, SubscriptionStatus
from prorata.subscriptions.services import payments_reconcile_due
from prorata.webhooks.models import WebhookEvent
from prorata_core.periods import utc
from tests.app.payments.test_sandbox_pages import english_on_the_challenge_page
from tests.app.subscriptions.support import assert_books_balance, buy, card, customer, eur
from tests.app.web.conftest import page_text
from tests.app.webhooks.support import endpoint

pytestmark = pytest.mark.django_db

SCA_CARD = "4000 0027 6000 3184"
RENEWAL = utc(2026, 2, 1)


@pytest.fixture
def bistro(clock, demo_catalog, client):
    """Bistro's Lite monthly × 5 (€330.00 a month) from 2026-01-01, its card on file now one that
    requires 3-D Secure; Jeanne signed in to the billing center."""
    clock.set(utc(2026, 1, 1))
    account, jeanne = customer("Bistro Numérique", "FR", "jeanne@bistro.example",
                               currency="EUR")
    buy(account, jeanne, "lite", "monthly", 5, card_token=card())
    PaymentMethod.objects.filter(account=account).update(removed_at=utc(2026, 1, 2),
                                                         is_default=False)
    payment_method_add(account=account, token=card(SCA_CARD), actor=jeanne)
    OutboxMessage.objects.all().delete()
    client.force_login(jeanne)
    yield account, jeanne
    assert_books_balance()


def rendered(message: OutboxMessage, language: str = "en") -> tuple[str, str, str]:
    """(subject, text, HTML) of ``message`` in ``language``."""
    message.language = language
    email = render_message(message)
    return email.subject, email.body, email.alternatives[0][0]


def pay_url(account, invoice) -> str:
    return f"/billing/{account.pk}/invoices/{invoice.pk}/pay/"


def authenticate_and_pay(client, account, invoice) -> str:
    """Pay now with the default card: the answer is the bank's challenge page."""
    answer = client.post(pay_url(account, invoice), {"payment_method": "default"})
    assert answer.status_code == 302
    assert answer["Location"].startswith("/sandbox-gateway/v1/challenge/")
    return answer["Location"]


def answer_challenge(client, challenge_url, answer) -> str:
    """The customer's answer on the bank's page: it sends them back to the return page."""
    back = client.post(challenge_url, {"answer": answer})
    assert back.status_code == 303
    return back["Location"]


def test_a_renewal_that_requires_authentication_waits_for_it_and_the_customer_is_asked(
        bistro, clock, client):
    account, _ = bistro
    endpoint("https://operator.example/hooks", ["invoice.payment_failed"])
    clock.set(RENEWAL)
    stats = bill_run()

    # not a refusal: the payment and the renewal say requires_action, the schedule goes on
    assert (stats.requires_action, stats.declined, stats.charged) == (1, 0, 0)
    renewal = Renewal.objects.get()
    invoice = renewal.invoice
    assert (renewal.status, renewal.next_attempt_at) == (RenewalStatus.REQUIRES_ACTION,
                                                         utc(2026, 2, 2))
    payment = Payment.objects.get(invoice=invoice)
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert (payment.failure_code, payment.completed_at) == ("authentication_required", RENEWAL)
    assert payment.action_url == ""  # off session: nobody to send to the bank's page
    charge = SandboxCharge.objects.get(idempotency_key=payment.idempotency_key)
    assert charge.off_session and charge.outcome == "requires_action" and not charge.action_secret
    assert Subscription.objects.get(account=account).status == SubscriptionStatus.PAST_DUE
    assert (invoice.status, invoice.amount_due) == (DocumentStatus.OPEN, 33000)
    assert account_balance(account, "EUR") == eur("-330.00")
    assert not LedgerEntry.objects.filter(kind=LedgerKind.PAYMENT, document=invoice).exists()
    # the operator's webhook hears of the unpaid attempt, its payment saying why
    (event,) = WebhookEvent.objects.filter(type="invoice.payment_failed")
    assert event.data["payment"]["status"] == "requires_action"

    # the e-mail: the bank asks to confirm the payment, the item, the amount, the Pay now link
    assert not OutboxMessage.objects.filter(template="payment_failed").exists()
    (mail,) = OutboxMessage.objects.filter(template="payment_requires_action")
    link = f"{settings.PRORATA_BASE_URL}{pay_url(account, invoice)}"
    subject, text, html = rendered(mail)
    assert subject.replace("\xa0", " ") == "Your bank asks you to confirm your payment of €330.00"
    for part in (text, html):
        assert f"confirm the payment of €330.00 for invoice {invoice.number}" in part
        assert "Nothing has been charged yet." in part
        assert "Webinar Lite, 5 licenses, monthly" in part and link in part
        assert "we will try your card again on February 2, 2026" in part
    assert "Confirm my payment" in html and "declined" not in text
    subject, text, html = rendered(mail, "fr")
    assert subject.startswith("Votre banque vous demande de confirmer votre paiement de 330,00")
    for part in (text, html):
        assert "Rien n'a encore été débité." in part.replace("&#x27;", "'")
        assert "5 licences" in part and link in part and "2 février 2026" in part
    assert "Confirmer mon paiement" in html

    # Pay now says what will happen and its button reads "Authenticate and pay" (French too)
    page = client.get(pay_url(account, invoice)).content.decode()
    assert "Authenticate and pay</button>" in page and "€330.00" in page
    assert "Your bank asks you to confirm this payment" in page
    client.cookies["django_language"] = "fr"
    assert "Authentifier et payer</button>" in client.get(pay_url(account, invoice)).content.decode()


def test_authenticate_and_pay_goes_through_the_challenge_and_pays_the_renewal(
        bistro, clock, client):
    account, _ = bistro
    clock.set(RENEWAL)
    bill_run()
    invoice = Renewal.objects.get().invoice
    clock.set(RENEWAL + timedelta(hours=9))

    challenge = authenticate_and_pay(client, account, invoice)
    # while the customer is on the bank's page nothing is charged, and Pay now leads back there
    attempt = Payment.objects.filter(invoice=invoice).latest("id")
    assert attempt.status == PaymentStatus.REQUIRES_ACTION and attempt.completed_at is None
    assert attempt.action_url == challenge
    assert Renewal.objects.get().status == RenewalStatus.CHARGING
    page = client.get(pay_url(account, invoice)).content.decode()
    assert "Continue the authentication" in page and challenge in page
    assert "Authenticate and pay</button>" not in page  # no second attempt meanwhile
    assert OutboxMessage.objects.filter(template="receipt").count() == 0

    back = answer_challenge(client, challenge, "approve")
    assert back == f"http://testserver/billing/{account.pk}/invoices/{invoice.pk}/pay/authenticated/"
    landed = client.get(back, follow=True)
    assert f"invoice {invoice.number} is paid" in landed.content.decode()
    assert landed.redirect_chain[-1][0] == f"/billing/{account.pk}/"

    # paid once: the invoice, the renewal settled, past_due over, the receipt
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due, invoice.amount_paid) == (DocumentStatus.PAID, 0,
                                                                          33000)
    assert Renewal.objects.get().status == RenewalStatus.PAID
    assert Subscription.objects.get(account=account).status == SubscriptionStatus.ACTIVE
    attempt.refresh_from_db()
    assert attempt.status == PaymentStatus.SUCCEEDED and attempt.reference.startswith("ch_")
    (receipt,) = OutboxMessage.objects.filter(template="receipt")
    assert receipt.context["kind"] == "renewal"
    assert account_balance(account, "EUR") == eur("0.00")
    # the return page again, the job and the next days change nothing
    client.get(back)
    assert payments_reconcile_due()["renewals_paid"] == 0
    clock.set(utc(2026, 2, 8))
    assert bill_run().requires_action == 0
    assert LedgerEntry.objects.filter(kind=LedgerKind.PAYMENT, document=invoice).count() == 1
    assert Payment.objects.filter(invoice=invoice, status=PaymentStatus.SUCCEEDED).count() == 1
    assert OutboxMessage.objects.filter(template="receipt").count() == 1


def test_the_banks_page_from_pay_now_is_in_french_for_a_french_customer(bistro, clock, client):
    account, jeanne = bistro
    jeanne.language = "fr"
    jeanne.save()
    clock.set(RENEWAL)
    bill_run()
    invoice = Renewal.objects.get().invoice
    text = page_text(client.get(authenticate_and_pay(client, account, invoice)))
    assert english_on_the_challenge_page(
        text, description=f"Invoice {invoice.number}") == [], text
    assert f"Facture {invoice.number}" in text, text


def test_a_failed_or_abandoned_authentication_leaves_the_dunning_schedule_as_it_was(
        bistro, clock, client):
    """Through the whole schedule: the renewal on 02-01, retries on 02-02, 02-04 and 02-08 each
    requiring authentication; in between the customer fails the challenge once and abandons it
    once; after the last retry the subscription expires as after refusals."""
    account, _ = bistro
    clock.set(RENEWAL)
    assert bill_run().requires_action == 1
    invoice = Renewal.objects.get().invoice

    # a failed authentication on Pay now: the bank's message, the renewal as it was
    clock.set(RENEWAL + timedelta(hours=10))
    back = answer_challenge(client, authenticate_and_pay(client, account, invoice), "fail")
    landed = client.get(back, follow=True)
    assert landed.redirect_chain[-1][0] == pay_url(account, invoice)
    page = landed.content.decode()
    assert "could not authenticate this payment" in page and "Authenticate and pay</button>" in page
    renewal = Renewal.objects.get()
    assert (renewal.status, renewal.next_attempt_at) == (RenewalStatus.REQUIRES_ACTION,
                                                         utc(2026, 2, 2))
    failed = Payment.objects.filter(invoice=invoice).latest("id")
    assert (failed.status, failed.failure_code) == (PaymentStatus.FAILED, "authentication_failed")

    # the first retry, on its day, requires the authentication again
    clock.set(utc(2026, 2, 2))
    assert bill_run().requires_action == 1
    renewal.refresh_from_db()
    assert (renewal.status, renewal.next_attempt_at) == (RenewalStatus.REQUIRES_ACTION,
                                                         utc(2026, 2, 4))

    # an authentication begun and never finished: the job waits, then gives up on it
    clock.set(utc(2026, 2, 2, 12))
    authenticate_and_pay(client, account, invoice)
    clock.set(utc(2026, 2, 2, 12, 5))
    assert payments_reconcile_due()["renewals_waiting"] == 1
    assert Renewal.objects.get().status == RenewalStatus.CHARGING
    clock.set(utc(2026, 2, 2, 12, 31))
    assert payments_reconcile_due()["renewals_failed"] == 1
    renewal.refresh_from_db()
    assert (renewal.status, renewal.next_attempt_at) == (RenewalStatus.REQUIRES_ACTION,
                                                         utc(2026, 2, 4))
    assert "Authenticate and pay</button>" in client.get(pay_url(account, invoice)).content.decode()
    assert payments_reconcile_due()["renewals_failed"] == 0  # settled once
    # the customer left: the job's failure is e-mailed, with the way back to Pay now (EN/FR)
    (abandoned,) = OutboxMessage.objects.filter(template="payment_failed")
    assert abandoned.to == "jeanne@bistro.example"
    assert abandoned.context["url"] == pay_url(account, invoice)
    subject, text, _html = rendered(abandoned)
    assert invoice.number in subject + text and "330.00" in text
    assert Payment.objects.filter(invoice=invoice).latest("id").message in text
    assert pay_url(account, invoice) in text
    subject_fr, text_fr, _html = rendered(abandoned, "fr")
    assert subject_fr != subject and "330,00" in text_fr

    # the second retry on 02-04, the last on 02-08: then the subscription expires
    clock.set(utc(2026, 2, 4))
    assert bill_run().requires_action == 1
    renewal.refresh_from_db()
    assert renewal.next_attempt_at == utc(2026, 2, 8)
    clock.set(utc(2026, 2, 7, 23))
    assert bill_run().requires_action == 0  # nothing before its day
    clock.set(utc(2026, 2, 8))
    last = bill_run()
    assert (last.requires_action, last.expired) == (1, 1)
    renewal.refresh_from_db()
    assert (renewal.status, renewal.next_attempt_at) == (RenewalStatus.FAILED, None)
    assert Subscription.objects.get(account=account).status == SubscriptionStatus.EXPIRED
    invoice.refresh_from_db()
    note = Document.objects.get(kind=DocumentKind.CREDIT_NOTE, refers_to=invoice)
    assert (invoice.status, invoice.amount_due, note.total) == (DocumentStatus.VOID, 0, -33000)
    assert account_balance(account, "EUR") == eur("0.00")
    # four attempts by the schedule, two by the customer; nothing was ever charged
    statuses = list(Payment.objects.filter(invoice=invoice).order_by("id")
                    .values_list("status", flat=True))
    assert statuses == ["requires_action", "failed", "requires_action", "failed",
                        "requires_action", "requires_action"]
    assert not SandboxCharge.objects.filter(outcome="succeeded", off_session=True).exists()
    # an e-mail for each attempt that had a retry left, then the expiry
    assert OutboxMessage.objects.filter(template="payment_requires_action").count() == 3
    assert OutboxMessage.objects.filter(template="subscription_expired").count() == 1
    # and one for the authentication the customer abandoned; none for the one they failed
    # on the page (they read the refusal there)
    assert OutboxMessage.objects.filter(template="payment_failed").count() == 1
    page = client.get(pay_url(account, invoice)).content.decode()
    assert f"cancelled by credit note {note.number}" in page
    assert "Authenticate and pay" not in page and "Pay now</button>" not in page


def test_credit_granted_later_pays_a_renewal_that_required_action_not_one_authenticating(
        bistro, clock, client):
    """The off-session attempt that required action is over (it can never be charged), so credit
    created afterwards goes to the invoice; while the customer is on the bank's page for Pay
    now's attempt, the invoice is left to that attempt (else it would be paid twice)."""
    from prorata.console.services import credit_adjust
    from tests.app.subscriptions.support import key, staff

    account, _ = bistro
    agent = staff("sam@prorata.example", "support_agent")
    clock.set(RENEWAL)
    bill_run()
    invoice = Renewal.objects.get().invoice

    # the customer is authenticating: a grant leaves the invoice to that attempt
    clock.set(RENEWAL + timedelta(hours=1))
    challenge = authenticate_and_pay(client, account, invoice)
    credit_adjust(account=account, amount=eur("100.00"), reason="Outage", actor=agent,
                  idempotency_key=key())
    invoice.refresh_from_db()
    assert (invoice.credit_applied, invoice.amount_due) == (0, 33000)
    answer_challenge(client, challenge, "fail")
    client.get(f"/billing/{account.pk}/invoices/{invoice.pk}/pay/authenticated/")
    assert Renewal.objects.get().status == RenewalStatus.REQUIRES_ACTION

    # no attempt in flight any more: the next grant's spare credit goes to the invoice
    credit_adjust(account=account, amount=eur("100.00"), reason="Goodwill", actor=agent,
                  idempotency_key=key())
    invoice.refresh_from_db()
    assert (invoice.status, invoice.credit_applied, invoice.amount_due) == (
        DocumentStatus.OPEN, 20000, 13000)
    assert account_balance(account, "EUR") == eur("-130.00")
    # and the retry on its day asks for the rest only, requiring the authentication again
    clock.set(utc(2026, 2, 2))
    assert bill_run().requires_action == 1
    retry = Payment.objects.filter(invoice=invoice).latest("id")
    assert (retry.amount, retry.status) == (13000, PaymentStatus.REQUIRES_ACTION)


def test_pay_now_again_while_the_bank_waits_is_refused_and_an_expired_challenge_is_settled(
        bistro, clock, client):
    account, _ = bistro
    clock.set(RENEWAL)
    bill_run()
    invoice = Renewal.objects.get().invoice
    clock.set(RENEWAL + timedelta(hours=2))
    challenge = authenticate_and_pay(client, account, invoice)
    attempts = Payment.objects.filter(invoice=invoice).count()

    # a second Pay now while the bank waits: refused, nothing sent, the way back offered
    again = client.post(pay_url(account, invoice), {"payment_method": "default"}, follow=True)
    page = again.content.decode()
    assert "still waiting for you to authenticate your last payment" in page
    assert "Continue the authentication" in page and challenge in page
    assert Payment.objects.filter(invoice=invoice).count() == attempts
    client.cookies["django_language"] = "fr"
    refused = client.post(pay_url(account, invoice), {"payment_method": "default"}, follow=True)
    assert "terminez-le d'abord sur la page de votre banque" in refused.content.decode().replace(
        "&#x27;", "'")
    del client.cookies["django_language"]

    # the bank's challenge expires (10 minutes): Pay now settles it and offers a new attempt
    clock.set(RENEWAL + timedelta(hours=2, minutes=11))
    page = client.get(pay_url(account, invoice)).content.decode()
    assert "Authenticate and pay</button>" in page and "Continue the authentication" not in page
    expired = Payment.objects.filter(invoice=invoice).latest("id")
    assert (expired.status, expired.failure_code) == (PaymentStatus.FAILED,
                                                      "authentication_failed")
    renewal = Renewal.objects.get()
    assert (renewal.status, renewal.next_attempt_at) == (RenewalStatus.REQUIRES_ACTION,
                                                         utc(2026, 2, 2))
    # and the new attempt goes through
    back = answer_challenge(client, authenticate_and_pay(client, account, invoice), "approve")
    assert "is paid" in client.get(back, follow=True).content.decode()
    assert Renewal.objects.get().status == RenewalStatus.PAID
