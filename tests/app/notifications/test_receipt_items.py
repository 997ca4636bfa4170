"""Receipts list each item with its period (issue 15): the receipt of a purchase, of a change, of a
renewal by the billing run (paid by card or by the account's credit), of a renewal through the
services' ORM road, of Pay now and of a transfer names each product, plan and licenses with the
period ``[start, end)`` it pays for and its next billing date, in the text and HTML parts, in the
reader's language (English and French)."""

from __future__ import annotations

import pytest
from django.db import transaction

from prorata.billing.models import Document, DocumentKind
from prorata.billing.renewals import renewal_pay_now, renewal_record
from prorata.billing.services import invoice_record_payment
from prorata.jobs.billing_run import bill_run
from prorata.notifications.models import OutboxMessage
from prorata.notifications.outbox import render_message
from prorata.payments.models import PaymentMethod
from prorata.payments.services import payment_method_add
from prorata.subscriptions.models import Subscription
from prorata_core.money import Money
from prorata_core.periods import utc
from tests.app.subscriptions.support import DECLINED_CARD, buy, card, customer, staff

pytestmark = pytest.mark.django_db


def receipts() -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(template="receipt").order_by("id"))


def parts(row: OutboxMessage, language: str) -> tuple[str, str]:
    row.language = language
    message = render_message(row)
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return message.body, html


def assert_lists(row: OutboxMessage, *, en: list[str], fr: list[str]) -> None:
    """Each expected line is in the text part as it is and in the HTML part (its item and its
    period on two lines there), in each language."""
    for language, lines in (("en", en), ("fr", fr)):
        text, html = parts(row, language)
        for line in lines:
            assert line in text, f"{language} text lacks {line!r}:\n{text}"
            for piece in line.strip("- ").split("\n  "):
                assert piece.replace("'", "&#x27;") in html, f"{language} HTML lacks {piece!r}"


def test_a_purchase_and_a_change_list_their_item_with_its_period(clock, demo_catalog):
    clock.set(utc(2026, 1, 1))
    acme, alice = customer("Acme Corp", "US", "alice@acme.example", currency="USD",
                           time_zone="UTC")
    buy(acme, alice, "lite", "monthly", 5, card_token=card())
    clock.set(utc(2026, 1, 15))
    buy(acme, alice, "pro", "monthly", 5)
    purchase, change = receipts()
    assert purchase.context["items"] == [{
        "product": "Webinar", "plan": "Lite", "licenses": 5, "cycle": "monthly",
        "previous": None, "period_start": "2026-01-01T00:00:00Z",
        "period_end": "2026-02-01T00:00:00Z", "next_billing_date": "2026-02-01T00:00:00Z"}]
    assert_lists(purchase, en=[
        "- Webinar Lite, 5 licenses, monthly\n"
        "  Period: January 1, 2026 to February 1, 2026 · next billing date: February 1, 2026",
    ], fr=[
        "- Webinar Lite, 5 licences, mensuel\n"
        "  Période\u00a0: du 1er janvier 2026 au 1er février 2026 · prochaine facturation le "
        "1er février 2026",
    ])
    # a change opens a new period from now: the item says so, with what it was before
    assert_lists(change, en=[
        "- Webinar Pro, 5 licenses, monthly (before: Lite, 5 licenses, monthly)\n"
        "  Period: January 15, 2026 to February 15, 2026 · next billing date: February 15, 2026",
    ], fr=[
        "  Période\u00a0: du 15 janvier 2026 au 15 février 2026 · prochaine facturation le "
        "15 février 2026",
    ])
    # the item's period stands for the receipt's: no second "Billing period" line
    assert "Billing period" not in parts(change, "en")[0]


def test_a_change_with_its_renewal_cancelled_says_it_is_not_renewed(clock, demo_catalog):
    from prorata.subscriptions.services import subscription_cancel_renewal

    clock.set(utc(2026, 1, 1))
    acme, alice = customer("Acme Corp", "US", "alice@acme.example", currency="USD",
                           time_zone="UTC")
    buy(acme, alice, "lite", "monthly", 5, card_token=card())
    subscription_cancel_renewal(account=acme, user=alice, product_code="webinar")
    clock.set(utc(2026, 1, 15))
    buy(acme, alice, "pro", "monthly", 5)
    change = receipts()[-1]
    assert change.context["items"][0]["next_billing_date"] is None
    assert_lists(change, en=["  Period: January 15, 2026 to February 15, 2026 · not renewed"],
                 fr=["  Période\u00a0: du 15 janvier 2026 au 15 février 2026 · non renouvelé"])


def test_renewal_receipts_list_the_renewed_item_whichever_road_writes_them(clock, demo_catalog):
    # Given three accounts due on February 1: one paid by card by the billing run, one whose
    # credit pays it all (the run's set-based road writes its receipt), one renewed through the
    # services' ORM road
    clock.set(utc(2026, 1, 1))
    rows = {}
    for name in ("card", "credit", "services"):
        account, user = customer(f"{name.title()} Corp", "US", f"{name}@acme.example",
                                 currency="USD", time_zone="UTC")
        buy(account, user, "lite", "monthly", 5, card_token=card())
        if name == "credit":
            buy(account, user, "lite", "monthly", 2)  # 3 licenses back as credit
        rows[name] = Subscription.objects.get(account=account).pk
    clock.set(utc(2026, 2, 1))
    with transaction.atomic():
        assert renewal_record(subscription_id=rows["services"], at=clock.now()) is not None
    assert bill_run().renewed == 2
    renewal_receipts = OutboxMessage.objects.filter(template="receipt", context__kind="renewal")
    by_reader = {row.to.split("@")[0]: row for row in renewal_receipts}
    assert set(by_reader) == {"card", "credit", "services"}
    licenses = {"card": 5, "credit": 2, "services": 5}
    credit = by_reader["credit"].context
    assert credit["amount_paid"]["amount"] == 0 < credit["credit_applied"]["amount"]
    for name, row in by_reader.items():
        # then each lists its item with the period it pays for, renewed at its end
        assert row.context["items"] == [{
            "product": "Webinar", "plan": "Lite", "licenses": licenses[name], "cycle": "monthly",
            "previous": None, "period_start": "2026-02-01T00:00:00Z",
            "period_end": "2026-03-01T00:00:00Z",
            "next_billing_date": "2026-03-01T00:00:00Z"}], name
        assert_lists(row, en=[
            "Your subscription was renewed for a new billing period:",
            f"- Webinar Lite, {licenses[name]} licenses, monthly\n"
            "  Period: February 1, 2026 to March 1, 2026 · next billing date: March 1, 2026",
        ], fr=[
            "Votre abonnement a été renouvelé pour une nouvelle période de facturation\u00a0:",
            f"- Webinar Lite, {licenses[name]} licences, mensuel\n"
            "  Période\u00a0: du 1er février 2026 au 1er mars 2026 · prochaine facturation le "
            "1er mars 2026",
        ])


def test_pay_now_and_a_transfer_send_receipts_with_their_items(clock, demo_catalog):
    clock.set(utc(2026, 1, 1))
    acme, alice = customer("Acme Corp", "US", "alice@acme.example", currency="USD",
                           time_zone="UTC")
    buy(acme, alice, "lite", "annual", 2, card_token=card())
    PaymentMethod.objects.filter(account=acme).update(removed_at=utc(2026, 1, 2),
                                                      is_default=False)
    payment_method_add(account=acme, token=card(DECLINED_CARD), actor=alice)
    clock.set(utc(2027, 1, 1))
    bill_run()  # declined: past due
    payment_method_add(account=acme, token=card(), actor=alice)
    invoice_id = Subscription.objects.get(account=acme).invoice_id
    assert renewal_pay_now(account=acme, user=alice, invoice_id=invoice_id).status == "paid"
    pay_now = receipts()[-1]
    assert pay_now.context["kind"] == "renewal"
    assert_lists(pay_now, en=[
        "- Webinar Lite, 2 licenses, annual\n"
        "  Period: January 1, 2027 to January 1, 2028 · next billing date: January 1, 2028",
    ], fr=[
        "- Webinar Lite, 2 licences, annuel\n"
        "  Période\u00a0: du 1er janvier 2027 au 1er janvier 2028 · prochaine facturation le "
        "1er janvier 2028",
    ])

    # A corporate account's renewal on terms, paid by transfer: its receipt too
    advisor = staff("advisor@prorata.example", "corporate_advisor")
    globex, _bob = customer("Globex SARL", "FR", "bob@globex.example", currency="EUR",
                            corporate_advisor=advisor, language="fr")
    clock.set(utc(2027, 2, 1))
    buy(globex, advisor, "pro", "monthly", 3, by_staff=True)
    clock.set(utc(2027, 3, 1))
    bill_run()
    invoice = Document.objects.get(account=globex, kind=DocumentKind.INVOICE,
                                   issued_at=utc(2027, 3, 1))
    invoice_record_payment(invoice=invoice, amount=Money(invoice.amount_due, "EUR"),
                           reference="TR-1", actor=advisor)
    transfer = receipts()[-1]
    assert (transfer.to, transfer.context["kind"]) == ("bob@globex.example", "renewal")
    assert_lists(transfer, en=[
        "- Webinar Pro, 3 licenses, monthly\n"
        "  Period: March 1, 2027 to April 1, 2027 · next billing date: April 1, 2027",
    ], fr=[
        "- Webinar Pro, 3 licences, mensuel\n"
        "  Période\u00a0: du 1er mars 2027 au 1er avril 2027 · prochaine facturation le "
        "1er avril 2027",
    ])
