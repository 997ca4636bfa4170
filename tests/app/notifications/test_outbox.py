"""The transactional outbox: written with the business transaction, de-duplicated by key, delivered
at least once with attachments, retried by the project clock, rendered in the recipient's language."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import transaction

from prorata.notifications import outbox
from prorata.notifications.models import OutboxMessage, OutboxStatus
from prorata.notifications.outbox import (
    MAX_ATTEMPTS,
    OutboxError,
    outbox_deliver,
    outbox_deliver_batch,
    outbox_enqueue,
    outbox_retry_now,
    register_attachment_renderer,
)
from tests.app.notifications.catalogs import install_french

pytestmark = pytest.mark.django_db

RECEIPT = {
    "name": "Alice",
    "kind": "change",
    "document_number": "2026-000042",
    "items": [{"product": "Webinar", "plan": "Lite", "licenses": 3, "cycle": "monthly",
               "previous": {"plan": "Lite", "licenses": 5, "cycle": "monthly"}}],
    "period_start": "2026-03-11T00:00:00Z",
    "period_end": "2026-04-11T00:00:00Z",
    "total": {"amount": 19800, "currency": "EUR"},
    "credit_applied": {"amount": 2555, "currency": "EUR"},
    "amount_paid": {"amount": 17245, "currency": "EUR"},
    "next_billing_date": "2026-04-11T00:00:00Z",
    "url": "/billing/receipts/42/",
}


def enqueue(key: str = "receipt:invoice:42", **overrides) -> OutboxMessage:
    fields = {"to": "alice@bistro.example", "template": "receipt", "context": RECEIPT,
              "language": "en", "dedupe_key": key,
              "attachments": [{"kind": "invoice", "id": 42}]} | overrides
    with transaction.atomic():
        return outbox_enqueue(**fields)


@pytest.fixture
def renderers(monkeypatch):
    """A test renderer for invoices, registered the way the billing app registers its own."""
    calls: list[tuple[int, str]] = []
    monkeypatch.setattr(outbox, "_RENDERERS", {})

    def render_invoice(document_id: int, language: str) -> tuple[str, bytes]:
        calls.append((document_id, language))
        return f"invoice-{document_id}.pdf", b"%PDF-1.4 test " + language.encode()

    register_attachment_renderer("invoice", render_invoice)
    return calls


def test_a_message_enqueued_in_a_rolled_back_transaction_is_not_there(clock):
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox_enqueue(to="a@b.example", template="receipt", context=RECEIPT, language="en",
                       dedupe_key="receipt:invoice:1")
        raise RuntimeError("the change failed")
    assert OutboxMessage.objects.count() == 0


def test_the_same_dedupe_key_twice_keeps_one_message(clock):
    first = enqueue()
    again = enqueue(context=RECEIPT | {"name": "Someone else"})
    assert again.pk == first.pk
    assert OutboxMessage.objects.get().context["name"] == "Alice"
    row = OutboxMessage.objects.get()
    assert (row.status, row.attempts, row.next_attempt_at, row.created_at, row.sent_at) == (
        OutboxStatus.PENDING, 0, clock.now(), clock.now(), None
    )


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"template": "reciept"}, "Unknown e-mail template 'reciept'"),
        ({"context": {"kind": "change"}}, "context lacks ['amount_paid', 'document_number']"),
        ({"context": RECEIPT | {"amount_payed": 1}}, "unknown keys ['amount_payed']"),
        ({"language": "de"}, "'de' is not one of the project's languages"),
        ({"dedupe_key": "has space"}, "is not a dedupe key"),
        ({"dedupe_key": ""}, "is not a dedupe key"),
        ({"to": "nobody"}, "'nobody' is not an e-mail address"),
        ({"attachments": [{"kind": "invoice", "id": "42"}]}, "is not an attachment"),
        ({"attachments": [{"kind": "invoice"}]}, "is not an attachment"),
    ],
)
def test_a_malformed_message_is_refused_when_enqueued(clock, overrides, says):
    with pytest.raises(OutboxError, match=None) as refused:
        enqueue(**overrides)
    assert says in str(refused.value)
    assert OutboxMessage.objects.count() == 0


def test_delivery_sends_the_rendered_message_with_its_attachment_once(clock, renderers):
    message = enqueue()
    assert outbox_deliver() == 1
    [sent] = mail.outbox
    assert sent.to == ["alice@bistro.example"]
    assert sent.subject == "Your subscription was changed: receipt 2026-000042"
    assert sent.extra_headers["X-Prorata-Dedupe-Key"] == "receipt:invoice:42"
    assert sent.message()["Date"] == "Wed, 11 Mar 2026 00:00:00 +0000"
    assert sent.extra_headers["Message-ID"] == "<receipt=3Ainvoice=3A42@prorata.example>"
    assert sent.attachments == [("invoice-42.pdf", b"%PDF-1.4 test en", "application/pdf")]
    assert renderers == [(42, "en")]
    assert sent.body == (
        "Hello Alice,\n"
        "\n"
        "Your subscription was changed. The new configuration applies now:\n"
        "\n"
        "- Webinar Lite, 3 licenses, monthly (before: Lite, 5 licenses, monthly)\n"
        "\n"
        "Billing period: March 11, 2026 to April 11, 2026\n"
        "\n"
        "Receipt 2026-000042\n"
        "Total: €198.00\n"
        "Credit applied: €25.55\n"
        "Amount paid: €172.45\n"
        "Next billing date: April 11, 2026\n"
        "\n"
        "Your receipt is attached to this e-mail as a PDF.\n"
        "See it in your billing center:\n"
        "http://127.0.0.1:8000/billing/receipts/42/\n"
        "\n"
        "The Prorata Webinars SAS billing team\n"
    )
    [(html, mimetype)] = sent.alternatives
    assert mimetype == "text/html"
    assert "€172.45" in html and 'href="http://127.0.0.1:8000/billing/receipts/42/"' in html
    message.refresh_from_db()
    assert (message.status, message.attempts, message.sent_at, message.last_error) == (
        OutboxStatus.SENT, 1, clock.now(), ""
    )
    # a sent message is never sent again
    assert outbox_deliver() == 0
    assert len(mail.outbox) == 1


def test_failed_attempts_back_off_by_the_project_clock_then_give_up(clock, renderers, settings):
    settings.EMAIL_BACKEND = "tests.app.notifications.backends.RefusingBackend"
    message = enqueue()
    start = clock.now()
    waits = [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
             timedelta(hours=6), timedelta(hours=12), timedelta(hours=24)]
    for attempt, wait in enumerate(waits, start=1):
        assert outbox_deliver() == 0
        message.refresh_from_db()
        assert (message.status, message.attempts) == (OutboxStatus.PENDING, attempt)
        assert message.next_attempt_at == clock.now() + wait
        assert message.last_error == "SMTPDataError: (451, b'Try again later')"
        # not due again until the wait is over
        clock.advance(wait - timedelta(seconds=1))
        assert outbox_deliver_batch().claimed == 0
        clock.advance(timedelta(seconds=1))
    assert clock.now() - start == timedelta(hours=44, minutes=36)
    assert outbox_deliver() == 0
    message.refresh_from_db()
    assert (message.status, message.attempts) == (OutboxStatus.FAILED, MAX_ATTEMPTS)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    clock.advance(timedelta(days=30))
    assert outbox_deliver() == 0 and mail.outbox == []
    # staff can send it again from the console
    assert outbox_retry_now(ids=[message.pk]) == 1
    assert outbox_deliver() == 1
    message.refresh_from_db()
    assert (message.status, message.attempts) == (OutboxStatus.SENT, MAX_ATTEMPTS + 1)


def test_a_mail_server_that_is_down_counts_as_a_failed_attempt(clock, renderers, settings):
    settings.EMAIL_BACKEND = "tests.app.notifications.backends.DownBackend"
    message = enqueue()
    assert outbox_deliver_batch() == outbox.DeliveryBatch(claimed=1, sent=0)
    message.refresh_from_db()
    assert (message.status, message.attempts, message.next_attempt_at) == (
        OutboxStatus.PENDING, 1, clock.now() + timedelta(minutes=1)
    )
    assert message.last_error == "ConnectionRefusedError: [Errno 111] Connection refused"


def test_an_attachment_nobody_renders_is_retried_until_a_renderer_exists(clock, renderers):
    enqueue("credit:1", attachments=[{"kind": "credit_note", "id": 7}])
    assert outbox_deliver() == 0
    assert OutboxMessage.objects.get().last_error.startswith(
        "OutboxError: No attachment renderer is registered for 'credit_note'"
    )
    register_attachment_renderer("credit_note", lambda id_, lang: (f"cn-{id_}.pdf", b"%PDF"))
    clock.advance(timedelta(minutes=1))
    assert outbox_deliver() == 1
    assert mail.outbox[0].attachments[0][0] == "cn-7.pdf"


def test_one_bad_message_does_not_hold_back_the_others(clock, renderers):
    enqueue("a", attachments=[{"kind": "nobody_renders_this", "id": 1}])
    enqueue("b")
    assert outbox_deliver_batch() == outbox.DeliveryBatch(claimed=2, sent=1)
    assert mail.outbox[0].extra_headers["X-Prorata-Dedupe-Key"] == "b"


def test_the_limit_caps_one_batch_oldest_first(clock, renderers):
    for key in ("one", "two", "three"):
        enqueue(key)
        clock.advance(timedelta(seconds=1))
    assert outbox_deliver(limit=2) == 2
    assert [m.extra_headers["X-Prorata-Dedupe-Key"] for m in mail.outbox] == ["one", "two"]
    assert outbox_deliver(limit=2) == 1


def test_the_deliver_mail_command_sends_everything_due(clock, renderers, capsys):
    enqueue("one")
    enqueue("two")
    call_command("deliver-mail", "--batch-size", "1")
    assert capsys.readouterr().out == "Sent 2 e-mails.\n"
    assert OutboxMessage.objects.filter(status=OutboxStatus.SENT).count() == 2


def test_the_deliver_mail_command_says_how_many_failed(clock, renderers, settings, capsys):
    settings.EMAIL_BACKEND = "tests.app.notifications.backends.RefusingBackend"
    enqueue("one")
    call_command("deliver-mail")
    assert capsys.readouterr().out == (
        "Sent 0 e-mails; 1 failed and will be retried or were given up (see the console).\n"
    )


def test_texts_are_not_html_escaped_and_html_is(clock, renderers):
    enqueue(context=RECEIPT | {"name": "O'Brien <b>"})
    outbox_deliver()
    sent = mail.outbox[0]
    assert sent.body.startswith("Hello O'Brien <b>,\n\n")
    assert "Hello O&#x27;Brien &lt;b&gt;," in sent.alternatives[0][0]


@pytest.fixture
def french_catalog(tmp_path, settings):
    install_french(tmp_path, settings, {
        "Hello %(name)s,": "Bonjour %(name)s,",
        "Amount paid: %(value)s": "Montant payé : %(value)s",
    })


def test_a_french_message_is_rendered_in_french(clock, renderers, french_catalog):
    enqueue(language="fr")
    outbox_deliver()
    sent = mail.outbox[0]
    text = sent.body.replace("\u202f", " ").replace("\xa0", " ")
    assert text.startswith("Bonjour Alice,\n\n")
    assert "Montant payé : 172,45 €\n" in text
    assert "11 mars 2026" in text and "11 avril 2026" in text
    assert "25,55 €" in text and "198,00 €" in text
    assert sent.attachments[0][1] == b"%PDF-1.4 test fr"
    assert renderers == [(42, "fr")]


def test_each_template_renders_in_both_languages(clock, renderers):
    contexts = {
        "receipt": {"kind": "purchase", "document_number": "2026-000001",
                    "amount_paid": {"amount": 477600, "currency": "USD"}},
        "credit_created": {"credit": {"amount": 2555, "currency": "EUR"},
                           "balance": {"amount": 2555, "currency": "EUR"},
                           "document_number": "2026-000003",
                           "next_billing_date": "2026-04-11T00:00:00Z",
                           "items": ["Webinar Lite × 3"], "url": "/billing/"},
        "payment_failed": {"amount_due": {"amount": 17245, "currency": "EUR"},
                           "document_number": "2026-000009",
                           "reason": "Your card was declined. Use another card.",
                           "next_retry_at": "2026-04-12T00:00:00Z", "url": "/billing/pay/9/"},
    }
    for template, context in contexts.items():
        for language in ("en", "fr"):
            enqueue(f"{template}:{language}", template=template, context=context,
                    language=language, attachments=[])
    assert outbox_deliver() == 6
    subjects = [m.subject.replace("\u202f", " ").replace("\xa0", " ") for m in mail.outbox]
    assert subjects[0::2] == [
        "Thank you for your purchase: receipt 2026-000001",
        "A credit of €25.55 was added to your account",
        "Your payment of €172.45 did not go through",
    ]
    assert "25,55 €" in subjects[3] and "172,45 €" in subjects[5]
    credit, failed = mail.outbox[2].body, mail.outbox[4].body
    assert "Your subscription change left a credit of €25.55 on your account" in credit
    assert "The credit is used first on your next payment, on April 11, 2026." in credit
    assert "Credit note 2026-000003 is attached to this e-mail as a PDF." in credit
    assert "- Webinar Lite × 3\n" in credit
    assert "We could not take your payment of €172.45 for invoice 2026-000009." in failed
    assert "Your card was declined. Use another card.\n" in failed
    assert "We will try your card again on April 12, 2026." in failed
    assert "http://127.0.0.1:8000/billing/pay/9/" in failed
