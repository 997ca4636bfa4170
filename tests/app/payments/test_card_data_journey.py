"""Card fields never reach Prorata's server (issue 17): a journey through the billing center's three
card forms (add a card, checkout with a new card, Pay now with a new card) as the browser makes it,
the card typed into the sandbox gateway's own form and posted to its own endpoint. Every request is
captured on its way in and every answer on its way out: none to a Prorata view carries a card number
or security code, no page Prorata answers shows one, no log record does, no e-mail (text, HTML or
PDF attachment) does, and no table holds one (issue 18, "no card number or CVC in any table, log,
e-mail or page after a full journey with test cards").
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.core import mail
from django.db import connection
from django.test import Client
from pypdf import PdfReader

from prorata.billing.models import Document, DocumentKind
from prorata.jobs.billing_run import bill_run
from prorata.jobs.periodic import deliver_mail
from prorata.payments.models import PaymentMethod
from prorata.subscriptions.models import Order, OrderStatus, Subscription, SubscriptionStatus
from prorata.subscriptions.services import cart_add
from prorata_core.periods import utc
from tests.app.subscriptions.support import customer, save_card

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_catalog")]

#: (number, security code) typed by the customer; each must never reach Prorata.
CARDS = [("4242 4242 4242 4242", "737"), ("5555 5555 5555 4444", "909"),
         ("4000 0566 5566 5556", "515")]
CAPTURED: list[tuple[str, str, bytes]] = []
#: (path, body) of every answer of a Prorata view (the pages, the PDFs).
ANSWERED: list[tuple[str, bytes]] = []


class CaptureRequests:
    """Test middleware (first in the chain): every request's method, path and body."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        CAPTURED.append((request.method, request.get_full_path(), request.body))
        response = self.get_response(request)
        if not request.path.startswith("/sandbox-gateway/"):
            body = (b"".join(response.streaming_content) if response.streaming
                    else response.content)
            if response.streaming:
                response.streaming_content = [body]
            ANSWERED.append((request.get_full_path(), body))
        return response


class Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record) + " " + repr(record.__dict__))


def pdf_text(content: bytes) -> str:
    """The text of a PDF's pages (its streams are compressed: a byte search would see nothing)."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def _type_card(client: Client, page: str, number: str, cvc: str, expiry: str = "12/30") -> str:
    """What the gateway's script does on ``page``: load its frame, post the card to the gateway's
    tokenisation endpoint, and hand the token back to the page's form."""
    script = re.search(r'<script src="([^"]+)" integrity="([^"]+)"', page)
    assert script is not None and script.group(1) == "/sandbox-gateway/v1/gateway.js"
    served = client.get(script.group(1))
    assert served.status_code == 200
    digest = base64.b64encode(hashlib.sha384(served.content).digest()).decode()
    assert script.group(2) == f"sha384-{digest}"  # pinned: the page loads exactly this file
    options = json.loads(re.search(r'data-options="([^"]+)"', page).group(1).replace("&quot;", '"'))
    frame = client.get(options["frame"], {"locale": options["locale"]})
    assert frame.status_code == 200 and b'name="number"' in frame.content
    answer = client.post("/sandbox-gateway/v1/tokens", json.dumps(
        {"number": number, "expiry": expiry, "cvc": cvc, "locale": options["locale"]}),
        content_type="application/json")
    assert answer.status_code == 201, answer.content
    return answer.json()["token"]


def test_no_card_number_reaches_a_prorata_view_a_log_or_a_table(clock, settings):
    settings.MIDDLEWARE = [f"{__name__}.CaptureRequests", *settings.MIDDLEWARE]
    CAPTURED.clear()
    ANSWERED.clear()
    handler = Everything()
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        clock.set(utc(2026, 1, 1))
        account, user = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
        client = Client()
        client.force_login(user)
        base = f"/billing/{account.pk}/"

        # 1. Add a card: the form carries the token only.
        page = client.get(base + "payment-methods/").content.decode()
        assert 'name="card_number"' not in page and 'name="card_token"' in page
        token = _type_card(client, page, *CARDS[0])
        assert client.post(base + "payment-methods/",
                           {"card_token": token, "make_default": "1"}).status_code == 302
        # the same token again is refused (single use), nothing saved
        again = client.post(base + "payment-methods/", {"card_token": token})
        assert again.status_code == 422 and PaymentMethod.objects.count() == 1

        # 2. Checkout with a new card.
        cart_add(account=account, user=user, product_code="webinar", plan_code="lite",
                 cycle_code="monthly", quantity=2)
        page = client.get(base + "checkout/").content.decode()
        expected = re.search(r'name="expected" value="([^"]*)"', page).group(1)
        key = re.search(r'name="idempotency_key" value="([^"]*)"', page).group(1)
        token = _type_card(client, page, *CARDS[1])
        placed = client.post(base + "checkout/", {
            "idempotency_key": key, "expected": expected, "payment_method": "new",
            "card_token": token})
        assert placed.status_code == 302, placed.content.decode()[:2000]
        assert Order.objects.get(account=account).status == OrderStatus.PAID
        assert PaymentMethod.objects.get(account=account, is_default=True).last4 == "4444"

        # 3. Pay now with a new card: the renewal is declined, the customer pays with a new one.
        PaymentMethod.objects.filter(account=account).update(is_default=False)
        save_card(account, user, "4000 0000 0000 0002")
        clock.set(utc(2026, 2, 1))
        bill_run()
        assert Subscription.objects.get(account=account).status == SubscriptionStatus.PAST_DUE
        invoice = Document.objects.filter(account=account, kind=DocumentKind.INVOICE).latest("id")
        clock.advance(timedelta(hours=2))
        page = client.get(f"{base}invoices/{invoice.pk}/pay/").content.decode()
        token = _type_card(client, page, *CARDS[2])
        paid = client.post(f"{base}invoices/{invoice.pk}/pay/",
                           {"payment_method": "new", "card_token": token})
        assert paid.status_code == 302
        assert Subscription.objects.get(account=account).status == SubscriptionStatus.ACTIVE

        # 4. What the customer reads afterwards: the cards page, every invoice and its PDF,
        # the transactions; and every e-mail of the journey, delivered.
        for path in (base, base + "payment-methods/", base + "transactions/",
                     base + "transactions.csv"):
            assert client.get(path).status_code == 200, path
        for document in Document.objects.filter(account=account):
            assert client.get(f"{base}documents/{document.pk}.pdf").status_code == 200
        assert deliver_mail()["sent"] >= 3  # receipt, payment failed, receipt
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)

    secrets = [number.replace(" ", "") for number, _cvc in CARDS]
    secrets += [number for number, _cvc in CARDS]
    prorata = [(method, path, body) for method, path, body in CAPTURED
               if not path.startswith("/sandbox-gateway/")]
    gateway = [body for _method, path, body in CAPTURED if path == "/sandbox-gateway/v1/tokens"]
    # The test sees the cards where they go (the gateway), so it would see them elsewhere too.
    assert len(gateway) == 3 and all(n.encode() in b"".join(gateway) for n, _c in CARDS)
    assert len(prorata) >= 13 and any(path.endswith("/checkout/") for _m, path, _b in prorata)
    for method, path, body in prorata:
        for secret in secrets:
            assert secret not in path and secret.encode() not in body, (method, path)
        for _number, cvc in CARDS:
            assert f"={cvc}".encode() not in body and f'"{cvc}"'.encode() not in body, path
    assert handler.lines, "the log handler heard nothing"
    for line in handler.lines:
        assert not any(secret in line for secret in secrets), line
    # The pages and PDFs Prorata answered show the last four digits at most.
    pdfs = [body for path, body in ANSWERED if body.startswith(b"%PDF")]
    assert len(pdfs) >= 2 and len(ANSWERED) >= 12
    for path, body in ANSWERED:
        text = pdf_text(body) if body.startswith(b"%PDF") else body.decode()
        for secret in secrets:
            assert secret not in text.replace("\u00a0", " "), path
    # ...and do show them where a payment is named (so the search above reads the right text)
    assert any("4444" in pdf_text(body) for body in pdfs)
    # The e-mails: subject, text, HTML and every attached PDF.
    assert len(mail.outbox) >= 3
    for message in mail.outbox:
        parts = [message.subject, message.body, *(c for c, _t in message.alternatives)]
        parts += [pdf_text(content) for _n, content, _t in message.attachments]
        for secret in secrets:
            assert not any(secret in part for part in parts), message.subject
        for _number, cvc in CARDS:
            assert not any(re.search(rf"\b{cvc}\b", part) for part in parts[:2]), message.subject
    tables = set(connection.introspection.table_names())
    for model in (m for m in apps.get_models() if m._meta.db_table in tables):
        for row in model.objects.values():
            text = " ".join(str(value) for value in row.values()).replace(" ", "")
            assert not any(secret in text for secret in secrets[:3]), model.__name__
