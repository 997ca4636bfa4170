"""Staff refunds of paid invoices (S11), second approvals, credit adjustments: every rule and
refusal, with the ledger, the balance and the credit-note numbering exact after each."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import override_settings

from prorata.accounts.models import AuditEntry
from prorata.billing.models import Document, DocumentKind, DocumentStatus, LedgerEntry, Refund
from prorata.billing.selectors import account_balance
from prorata.billing.services import RefundRefused, payment_refund
from prorata.console.errors import StaffActionRefused, StaffNotPermitted
from prorata.console.models import CreditAdjustment, StaffLimits, StaffRefund, StaffRefundStatus
from prorata.console.services import credit_adjust, refund_approve, refund_request
from prorata.notifications.models import OutboxMessage
from prorata.payments.gateway import ChargeOutcome, ChargeResult
from prorata.payments.sandbox import SandboxGateway
from prorata_core.errors import ValidationError
from tests.app.subscriptions.support import (
    assert_books_balance,
    buy,
    card,
    customer,
    eur,
    numbers,
    staff,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_groups():
    """The staff groups and their console permissions, made as their data migrations make them.

    A transactional test starts on a database that an earlier one may have flushed; restoring it
    with ``serialized_rollback`` clashes with the content types the flush's post_migrate made again
    (duplicate key), so the groups are made here, on the migrations' own model state."""
    import importlib

    from django.db.migrations.loader import MigrationLoader

    state_apps = MigrationLoader(connection).project_state().apps
    for module, forward in (
        ("prorata.accounts.migrations.0002_staff_groups_and_append_only_audit", "create_groups"),
        ("prorata.support.migrations.0002_staff_permissions", "grant"),
        ("prorata.subscriptions.migrations.0008_support_agents_see_orders", "grant"),
        ("prorata.console.migrations.0002_operators_set_the_limits", "grant"),
    ):
        getattr(importlib.import_module(module), forward)(state_apps, None)


@pytest.fixture
def bistro(clock, demo_catalog):
    """Bistro paid Pro monthly × 2 by card: 458.00 + 20 % VAT = 549.60 EUR."""
    account, bea = customer("Bistro Numérique", "FR", "bea@bistro.example", language="fr")
    invoice = buy(account, bea, "pro", "monthly", 2, card_token=card()).invoice
    assert invoice.total == 54960
    return account, bea, invoice


@pytest.fixture
def agent():
    return staff("sam@prorata.example", "support_agent")


def ledger(account) -> list[tuple[str, int]]:
    return list(LedgerEntry.objects.filter(account=account).order_by("id")
                .values_list("kind", "amount"))


def test_a_partial_refund_issues_a_credit_note_refunds_the_card_and_e_mails_the_receipt(
        bistro, agent):
    account, _bea, invoice = bistro
    done = refund_request(invoice=invoice, amount=eur("100.00"), reason="Charged twice",
                          actor=agent, idempotency_key="form-1", ip="198.51.100.7")
    assert done.status == StaffRefundStatus.REFUNDED
    note = done.credit_note
    assert (note.number, note.refers_to, note.total, note.status) == (
        "CN-2026-000001", invoice, -10000, DocumentStatus.PAID)
    assert [(line.amount, line.tax, line.tax_rate_bp) for line in note.lines.all()] == [
        (-8333, -1667, 2000)]
    assert done.refund.status == "succeeded" and done.refund.amount == 10000
    assert ledger(account)[-2:] == [("credit_note", 10000), ("refund", -10000)]
    assert account_balance(account).amount == 0
    # the refund's receipt is built by billing's receipt builder, as every receipt is
    receipt = OutboxMessage.objects.get(template="receipt", context__kind="refund")
    assert receipt.to == "bea@bistro.example" and receipt.language == "fr"
    assert receipt.attachments == [{"kind": "credit_note", "id": note.pk}]
    assert receipt.dedupe_key == f"receipt:credit_note:{note.pk}:{_bea.pk}"
    assert receipt.context == {
        "kind": "refund", "document_number": "CN-2026-000001",
        "amount_paid": {"amount": 10000, "currency": "EUR"},
        "total": {"amount": 10000, "currency": "EUR"},
        "credit_applied": {"amount": 0, "currency": "EUR"},
        "invoice_number": invoice.number, "method": done.refund.payment.method_label,
        "name": receipt.context["name"], "time_zone": "Europe/Paris",
        "url": f"/billing/{account.pk}/documents/{note.pk}.pdf"}
    entry = AuditEntry.objects.get(action="refund.request")
    assert (entry.actor, entry.account, entry.ip, entry.after["reason"]) == (
        agent, account, "198.51.100.7", "Charged twice")
    assert AuditEntry.objects.filter(action="refund.complete").count() == 1
    assert_books_balance()


def test_never_more_than_paid_minus_refunded(bistro, agent):
    account, _bea, invoice = bistro
    with pytest.raises(StaffActionRefused) as refused:
        refund_request(invoice=invoice, amount=eur("549.61"), reason="r", actor=agent,
                       idempotency_key="k1")
    assert refused.value.params["left"] == "549.60 EUR"
    refund_request(invoice=invoice, amount=eur("100.00"), reason="r", actor=agent,
                   idempotency_key="k2")
    with pytest.raises(StaffActionRefused):
        refund_request(invoice=invoice, amount=eur("449.61"), reason="r", actor=agent,
                       idempotency_key="k3")
    rest = refund_request(invoice=invoice, amount=eur("449.60"), reason="r", actor=agent,
                          idempotency_key="k4")
    assert rest.status == StaffRefundStatus.REFUNDED
    with pytest.raises(StaffActionRefused):
        refund_request(invoice=invoice, amount=eur("0.01"), reason="r", actor=agent,
                       idempotency_key="k5")
    assert numbers(DocumentKind.CREDIT_NOTE) == ["CN-2026-000001", "CN-2026-000002"]
    assert sum(r.amount for r in Refund.objects.all()) == 54960
    assert account_balance(account).amount == 0
    assert StaffRefund.objects.count() == 2
    assert_books_balance()


def test_a_whole_refund_reverses_the_invoice_line_by_line(bistro, agent):
    _account, _bea, invoice = bistro
    StaffLimits.objects.create(currency="EUR", refund_approval_above=100000)
    done = refund_request(invoice=invoice, amount=eur("549.60"), reason="Cancel",
                          actor=agent, idempotency_key="whole")
    lines = [(line.amount, line.tax) for line in done.credit_note.lines.all()]
    assert lines == [(-line.amount, -line.tax) for line in invoice.lines.all()]
    assert done.credit_note.total == -invoice.total
    assert_books_balance()


def test_an_amount_no_rounding_reaches_is_refused_with_the_nearest_ones(bistro, agent):
    _account, _bea, invoice = bistro
    with pytest.raises(StaffActionRefused) as refused:
        refund_request(invoice=invoice, amount=eur("0.03"), reason="r", actor=agent,
                       idempotency_key="odd")
    assert (refused.value.params["below"], refused.value.params["above"]) == ("0.02 EUR",
                                                                              "0.04 EUR")
    assert not Document.objects.filter(kind=DocumentKind.CREDIT_NOTE).exists()


def test_an_unpaid_invoice_cannot_be_refunded(clock, demo_catalog, agent):
    advisor = staff("advisor@prorata.example", "corporate_advisor")
    account, _gina = customer("Globex", "DE", "gina@globex.example", corporate_advisor=advisor)
    invoice = buy(account, advisor, "enterprise", "annual", 10, by_staff=True,
                  unit_amount=480000).invoice
    assert invoice.status == DocumentStatus.OPEN
    with pytest.raises(StaffActionRefused) as refused:
        refund_request(invoice=invoice, amount=eur("10.00"), reason="r", actor=advisor,
                       idempotency_key="unpaid")
    assert "is not paid" in refused.value.message
    assert not StaffRefund.objects.exists() and not Refund.objects.exists()


def test_a_double_submission_refunds_once(bistro, agent):
    _account, _bea, invoice = bistro
    first = refund_request(invoice=invoice, amount=eur("50.00"), reason="r", actor=agent,
                           idempotency_key="same-form")
    again = refund_request(invoice=invoice, amount=eur("50.00"), reason="r", actor=agent,
                           idempotency_key="same-form")
    assert first.pk == again.pk
    assert Refund.objects.count() == 1 and numbers(DocumentKind.CREDIT_NOTE) == ["CN-2026-000001"]


def test_above_the_threshold_a_second_staff_member_approves_not_the_same_one(bistro, agent):
    account, _bea, invoice = bistro
    StaffLimits.objects.create(currency="EUR", refund_approval_above=20000)
    waiting = refund_request(invoice=invoice, amount=eur("300.00"), reason="Outage",
                             actor=agent, idempotency_key="big")
    assert waiting.status == StaffRefundStatus.AWAITING_APPROVAL
    assert not Refund.objects.exists() and not Document.objects.filter(
        kind=DocumentKind.CREDIT_NOTE).exists()
    # the waiting amount is reserved: 549.60 − 300.00 = 249.60 left
    with pytest.raises(StaffActionRefused):
        refund_request(invoice=invoice, amount=eur("249.61"), reason="r", actor=agent,
                       idempotency_key="more")
    with pytest.raises(StaffActionRefused) as same:
        refund_approve(staff_refund=waiting, actor=agent)
    assert "not the one who asked" in same.value.message
    operator = staff("ops@prorata.example", "operator")
    with pytest.raises(StaffNotPermitted):
        refund_approve(staff_refund=waiting, actor=operator)
    second = staff("lead@prorata.example", "support_agent")
    done = refund_approve(staff_refund=waiting, actor=second, ip="203.0.113.5")
    assert (done.status, done.approved_by, done.approved_ip) == (
        StaffRefundStatus.REFUNDED, second, "203.0.113.5")
    assert done.refund.amount == 30000 and done.credit_note.total == -30000
    with pytest.raises(StaffActionRefused):
        refund_approve(staff_refund=done, actor=second)
    assert ledger(account)[-2:] == [("credit_note", 30000), ("refund", -30000)]
    assert AuditEntry.objects.get(action="refund.approve").actor == second
    assert_books_balance()


class RefusingGateway(SandboxGateway):
    """The sandbox, whose refunds the provider refuses."""

    def refund(self, *, reference, amount, idempotency_key):
        return ChargeResult(ChargeOutcome.DECLINED, "", "The card's bank refused the refund.")


def test_a_failed_refund_leaves_the_credit_note_unpaid_and_says_so(bistro, agent):
    account, _bea, invoice = bistro
    with override_settings(
            PRORATA_PAYMENT_GATEWAY="tests.app.console.test_refunds.RefusingGateway"):
        failed = refund_request(invoice=invoice, amount=eur("100.00"), reason="r", actor=agent,
                                idempotency_key="fails")
    assert failed.status == StaffRefundStatus.FAILED
    assert failed.message == "The card's bank refused the refund."
    assert failed.credit_note.status == DocumentStatus.OPEN
    assert failed.refund.status == "failed"
    # the credit stays on the account; no refund entry; no receipt
    assert ledger(account)[-1] == ("credit_note", 10000)
    assert account_balance(account).amount == 10000
    assert not OutboxMessage.objects.filter(template="receipt", context__kind="refund").exists()
    assert_books_balance()


def test_roles_operators_cannot_refund_and_advisors_only_their_accounts(bistro):
    _account, _bea, invoice = bistro
    for who in (staff("ops@prorata.example", "operator"),
                staff("advisor@prorata.example", "corporate_advisor")):
        with pytest.raises(StaffNotPermitted):
            refund_request(invoice=invoice, amount=eur("1.00"), reason="r", actor=who,
                           idempotency_key=f"role-{who.pk}")
    assert not StaffRefund.objects.exists()


def test_a_reason_is_mandatory(bistro, agent):
    _account, _bea, invoice = bistro
    with pytest.raises(ValidationError):
        refund_request(invoice=invoice, amount=eur("1.00"), reason="  ", actor=agent,
                       idempotency_key="no-reason")
    assert not StaffRefund.objects.exists()


def test_a_credit_adjustment_needs_a_reason_and_is_capped_per_role(bistro, agent):
    account, _bea, _invoice = bistro
    with pytest.raises(ValidationError):
        credit_adjust(account=account, amount=eur("10.00"), reason="", actor=agent,
                      idempotency_key="c0")
    with pytest.raises(StaffActionRefused) as capped:
        credit_adjust(account=account, amount=eur("100.01"), reason="Goodwill", actor=agent,
                      idempotency_key="c1")
    assert capped.value.params["cap"] == "100.00 EUR"
    with pytest.raises(StaffNotPermitted):
        credit_adjust(account=account, amount=eur("1.00"), reason="Goodwill",
                      actor=staff("ops@prorata.example", "operator"), idempotency_key="c2")
    granted = credit_adjust(account=account, amount=eur("25.00"), reason="Outage on 3 March",
                            actor=agent, idempotency_key="c3", ip="198.51.100.1")
    again = credit_adjust(account=account, amount=eur("25.00"), reason="Outage on 3 March",
                          actor=agent, idempotency_key="c3")
    assert again.pk == granted.pk and CreditAdjustment.objects.count() == 1
    assert granted.credit_note.total == -2500 and granted.credit_note.number == "CN-2026-000001"
    assert account_balance(account).amount == 2500
    assert OutboxMessage.objects.get(template="credit_granted").attachments == [
        {"kind": "credit_note", "id": granted.credit_note.pk}]
    entry = AuditEntry.objects.get(action="credit.adjust")
    assert (entry.after["reason"], entry.ip, entry.actor) == ("Outage on 3 March",
                                                              "198.51.100.1", agent)
    assert_books_balance()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="threads need PostgreSQL row locks")
@pytest.mark.django_db(transaction=True)
def test_two_refunds_of_one_invoice_submitted_at_once_cannot_both_pass(
        staff_groups, demo_catalog, clock):
    account, bea = customer("Bistro Numérique", "FR", "bea@bistro.example")
    invoice = buy(account, bea, "pro", "monthly", 2, card_token=card()).invoice
    agents = [staff(f"agent{i}@prorata.example", "support_agent") for i in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def run(index):
        try:
            barrier.wait()
            outcomes[index] = refund_request(invoice=invoice, amount=eur("400.00"), reason="r",
                                             actor=agents[index], idempotency_key=f"t{index}")
        except Exception as error:
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = [o for o in outcomes if isinstance(o, StaffRefund)]
    refused = [o for o in outcomes if isinstance(o, StaffActionRefused)]
    assert len(done) == 1 and len(refused) == 1, outcomes
    assert Refund.objects.get().amount == 40000
    assert numbers(DocumentKind.CREDIT_NOTE) == ["CN-2026-000001"]
    assert account_balance(account).amount == 0
    assert_books_balance()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="threads need PostgreSQL row locks")
@pytest.mark.django_db(transaction=True)
def test_two_credit_refunds_on_two_payments_at_once_cannot_overdraw_the_balance(
        staff_groups, demo_catalog, clock):
    """Credit 200.00 on the account; two refunds of 146.90 started at once on two card payments:
    the one that checks second counts the first, still pending, and is refused."""
    account, bea = customer("Bistro Numérique", "FR", "bea@bistro.example")
    first = buy(account, bea, "lite", "monthly", 3, card_token=card()).invoice  # 198.00 by card
    second = buy(account, bea, "pro", "monthly", 2).invoice  # the upgrade, by the saved card
    agent = staff("sam@prorata.example", "support_agent")
    for key in ("c-1", "c-2"):
        credit_adjust(account=account, amount=eur("100.00"), reason="Outage", actor=agent,
                      idempotency_key=key)
    payments = [first.payments.get(status="succeeded"), second.payments.get(status="succeeded")]
    assert all(p.amount >= 14690 for p in payments)
    available = account_balance(account).amount
    assert 14690 < available < 2 * 14690
    barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def run(index):
        try:
            barrier.wait()
            outcomes[index] = payment_refund(payment=payments[index], amount=eur("146.90"),
                                             actor=agent, memo="concurrent")
        except Exception as error:
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = [o for o in outcomes if isinstance(o, Refund)]
    refused = [o for o in outcomes if isinstance(o, RefundRefused)]
    assert len(done) == 1 and len(refused) == 1, outcomes
    assert account_balance(account).amount == available - 14690 >= 0
    assert_books_balance()


def test_refusals_say_what_is_left(bistro, agent):
    _account, _bea, invoice = bistro
    with pytest.raises(StaffActionRefused) as refused:
        refund_request(invoice=invoice, amount=eur("600.00"), reason="r", actor=agent,
                       idempotency_key="msg")
    assert refused.value.message == (
        "At most 549.60 EUR can be refunded on invoice 2026-000001: what was paid by card, less "
        "what was refunded or awaits approval.")


def test_the_refund_receipt_is_in_the_customers_language_with_the_credit_note(
        bistro, agent, mailoutbox):
    from prorata.notifications.outbox import outbox_deliver

    _account, _bea, invoice = bistro
    done = refund_request(invoice=invoice, amount=eur("100.00"), reason="r", actor=agent,
                          idempotency_key="mail")
    mailoutbox.clear()
    outbox_deliver()
    mail = next(m for m in mailoutbox if "rembours" in m.subject)
    assert mail.subject == "Votre remboursement pour la facture 2026-000001"
    assert "Nous avons remboursé 100,00\u00a0€ sur la facture 2026-000001." in mail.body
    assert "Montant remboursé : 100,00\u00a0€" in mail.body
    assert f"avoir {done.credit_note.number} est joint à cet e-mail au format PDF." in mail.body
    # the link is the credit note's page, made absolute with PRORATA_BASE_URL, as on receipts
    from django.conf import settings
    link = (f"{settings.PRORATA_BASE_URL.rstrip('/')}/billing/{_account.pk}/documents/"
            f"{done.credit_note.pk}.pdf")
    assert link in mail.body
    html = mail.alternatives[0][0]
    assert f'href="{link}"' in html and "Montant remboursé" in html
    (name, content, kind), = mail.attachments
    assert done.credit_note.number in name and kind == "application/pdf"
    assert content[:4] == b"%PDF"


def test_the_refund_receipt_in_english_has_the_receipts_shape(bistro, agent, mailoutbox):
    from django.conf import settings

    from prorata.notifications.outbox import outbox_deliver

    account, bea, invoice = bistro
    bea.language = "en"
    bea.save(update_fields=["language"])
    done = refund_request(invoice=invoice, amount=eur("100.00"), reason="r", actor=agent,
                          idempotency_key="mail-en")
    mailoutbox.clear()
    outbox_deliver()
    mail = next(m for m in mailoutbox if "refund" in m.subject)
    note = done.credit_note
    assert mail.subject == "Your refund for invoice 2026-000001"
    assert "Hello Bistro," in mail.body
    assert "We refunded €100.00 of invoice 2026-000001." in mail.body
    assert f"Credit note {note.number}\nAmount refunded: €100.00" in mail.body
    assert f"Credit note {note.number} is attached to this e-mail as a PDF." in mail.body
    link = f"{settings.PRORATA_BASE_URL.rstrip('/')}/billing/{account.pk}/documents/{note.pk}.pdf"
    assert f"See it in your billing center:\n{link}" in mail.body
    assert "Thank you for your purchase" not in mail.body and "Total:" not in mail.body
    html = mail.alternatives[0][0]
    assert f'href="{link}"' in html and "View my receipt" in html
