"""The card payments of renewal invoices: an attempt, its success, and Pay now.

A renewal invoice (written by the billing run, :mod:`prorata.jobs.invoicing`) is paid by card
attempts, each a pending :class:`~prorata.billing.models.Payment` with its own idempotency key
(:func:`renewal_payment_key`). The billing run's charge step (:mod:`prorata.jobs.charging`) and a
billing contact's Pay now (:func:`renewal_pay_now`) both record a success with
:func:`renewal_payment_succeeded`: the invoice paid, its ledger entry, the renewal settled, the
subscription out of ``past_due`` and the receipt queued, in one transaction.

3-D Secure: a renewal whose bank asked for an authentication off session is ``requires_action``
(:mod:`prorata.jobs.charging`); Pay now then charges with the customer present, and when the bank
asks them to authenticate, the attempt waits (``requires_action``, not completed) while they do it
on the gateway's page, which sends them back to :func:`renewal_return_url`;
:func:`renewal_payment_confirm` settles it once, from the gateway's answer (the return page, the
provider's webhook, or the reconciliation job for an authentication never completed). A failed or
abandoned authentication leaves the dunning schedule as it was.

Amounts are integer minor units; every instant is the caller's (the project clock's).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils.translation import gettext, gettext_noop

from prorata.accounts.models import Account, BillingMode, User
from prorata.accounts.services import audit_record
from prorata.billing.errors import AuthenticationInProgress, NothingToPay
from prorata.billing.locks import lock_account, lock_subscriptions
from prorata.billing.models import (
    Document,
    DocumentKind,
    DocumentStatus,
    LedgerKind,
    Payment,
    PaymentStatus,
)
from prorata.billing.selectors import account_balance
from prorata.billing.services import (
    Movement,
    document_rows,
    document_save,
    documents_finalize,
    invoice_apply_payment,
    invoice_payment_failed,
    ledger_append,
    notify_billing_contacts,
    receipt_enqueue,
)
from prorata.billing.writer import (
    card_attempt,
    credit_note_voiding,
    document_entry_amount,
    ledger_memo,
    receipt_context_for_renewal,
    renewal_build,
    renewal_order,
    renewal_payment_key,
)
from prorata.catalog.selectors import catalog_snapshot
from prorata.common import faults
from prorata.common.clock import format_instant, now
from prorata.common.db import JOB_ATTEMPTS, retry_transient
from prorata.common.urls import absolute_url
from prorata.jobs.models import BETWEEN_ATTEMPTS, Renewal, RenewalStatus
from prorata.notifications.context import money_json
from prorata.payments.gateway import ChargeOutcome, ChargeResult, get_gateway
from prorata.payments.models import PaymentMethod
from prorata.subscriptions.models import Subscription, SubscriptionStatus
from prorata.subscriptions.selectors import account_tax
from prorata.subscriptions.transitions import subscription_transition
from prorata_core.catalog import Catalog
from prorata_core.errors import ProrataError
from prorata_core.lifecycle import Event, Status
from prorata_core.money import Money
from prorata_core.periods import Period

__all__ = ["renewal_payment_key"]  # re-exported: the run's first attempt is keyed the same way

#: How long Pay now waits for the customer to authenticate a payment (3-D Secure) before the
#: reconciliation job gives up on the attempt (failed: ``authentication_abandoned``, nothing
#: charged), as the checkout does (``subscriptions.services.AUTHENTICATION_TIMEOUT``): longer than
#: the gateways' own expiry of the authentication (the sandbox's 10 minutes, Stripe's 15).
AUTHENTICATION_TIMEOUT = timedelta(minutes=30)
AUTHENTICATION_UNAVAILABLE = gettext_noop(
    "Your bank asks you to authenticate this payment, but its page could not be opened, so "
    "nothing was charged. Try again, or pay with another card."
)
AUTHENTICATION_ABANDONED = gettext_noop(
    "The authentication of your payment with your bank was not completed, so nothing was "
    "charged. Pay now again when you are ready."
)
#: Failure codes of an attempt whose authentication was not done: the renewal still needs one.
_AUTHENTICATION_CODES = frozenset({"authentication_failed", "authentication_abandoned"})

logger = logging.getLogger(__name__)


class Card(NamedTuple):
    """An account's default card as a payment attempt names it."""

    pk: int
    brand: str
    last4: str

    @property
    def label(self) -> str:
        return f"{self.brand} •••• {self.last4}"


def default_cards(account_ids: set[int]) -> dict[int, Card]:
    """Each account's default card (id, brand, last four digits), if it has one."""
    return {
        account_id: Card(pk, brand, last4)
        for account_id, pk, brand, last4 in PaymentMethod.objects.filter(
            account_id__in=account_ids, is_default=True, removed_at__isnull=True
        ).values_list("account_id", "id", "brand", "last4")
    }


def renewal_attempt_create(*, renewal: Renewal, card: Card | None, at: datetime) -> Payment:
    """A new pending card attempt for the amount due on ``renewal``'s invoice (``card`` None: no
    card on file, which the charge step records as a failure). Counts the attempt and marks the
    renewal ``charging``. Call inside a transaction, under the account's lock."""
    renewal.attempts += 1
    renewal.status = RenewalStatus.CHARGING
    renewal.save(update_fields=["attempts", "status"])
    row = card_attempt(
        account_id=renewal.account_id, currency=renewal.invoice.currency,
        amount=renewal.invoice.amount_due, card_id=card.pk if card else None,
        card_label=card.label if card else "", attempt=renewal.attempts, at=at,
        idempotency_key=renewal_payment_key(renewal.subscription_id, renewal.period_start,
                                            renewal.attempts))
    payment = Payment.objects.create(invoice=renewal.invoice, **row._asdict())
    faults.point("after_payment_row")
    return payment


def renewal_of_payment(payment: Payment) -> Renewal:
    """The renewal whose invoice ``payment`` pays."""
    return Renewal.objects.select_related("subscription").get(invoice_id=payment.invoice_id)


@retry_transient(attempts=JOB_ATTEMPTS)
def renewal_payment_succeeded(*, payment_id: int, reference: str, at: datetime) -> bool:
    """Record that the gateway took renewal payment ``payment_id``, pending or awaiting its
    authentication (3-D Secure): the payment succeeded, the invoice paid by its amount, a ledger
    entry, the renewal paid, the subscription ``active`` again if it was ``past_due``, and a
    receipt to the billing contacts. Returns False when the payment was settled already (another
    run, the return page or a webhook recorded it). Takes its own transaction and the account's
    lock."""
    with transaction.atomic():
        payment = Payment.objects.get(pk=payment_id)
        account = lock_account(payment.account_id)
        payment = Payment.objects.select_related("invoice").get(pk=payment_id)
        if payment.status not in (PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION):
            return False
        payment.status, payment.reference, payment.completed_at = (
            PaymentStatus.SUCCEEDED, reference, at)
        payment.save(update_fields=["status", "reference", "completed_at"])
        invoice = payment.invoice
        invoice_apply_payment(invoice=invoice, amount=payment.amount, at=at)
        ledger_append(account=account, currency=payment.currency, at=at, movements=[
            Movement(LedgerKind.PAYMENT, payment.amount, document=invoice, payment=payment,
                     memo=ledger_memo(LedgerKind.PAYMENT.value, number=invoice.number or "",
                                      label=payment.method_label)),
        ])
        _renewal_paid(account=account, invoice=invoice, renewal=renewal_of_payment(payment),
                      at=at)
    return True


def renewal_settled(*, account: Account, invoice: Document, at: datetime) -> bool:
    """A renewal invoice paid in full otherwise than by its card attempts (by credit created
    later, :mod:`prorata.billing.credit`): its dunning ends as if the retry had been paid (the
    renewal paid, the subscription ``active`` again if ``past_due``, the receipt). Returns False
    when ``invoice`` is no renewal's. Inside the caller's transaction, under the account lock."""
    renewal = Renewal.objects.filter(invoice_id=invoice.pk).first()
    if renewal is None:
        return False
    _renewal_paid(account=account, invoice=invoice, renewal=renewal, at=at)
    return True


def _renewal_paid(*, account: Account, invoice: Document, renewal: Renewal, at: datetime) -> None:
    renewal.status, renewal.next_attempt_at = RenewalStatus.PAID, None
    renewal.save(update_fields=["status", "next_attempt_at"])
    (subscription,) = lock_subscriptions(account_id=account.pk, ids=[renewal.subscription_id])
    if subscription.status == SubscriptionStatus.PAST_DUE:
        subscription_transition(subscription=subscription, to=Status.ACTIVE,
                                event=Event.RENEWAL_PAID, at=at,
                                before={"invoice": invoice.number},
                                after={"invoice": invoice.number})
    if invoice.amount_due == 0:
        receipt_enqueue(account=account, document=invoice, context=renewal_receipt(
            invoice, Period(renewal.period_start, renewal.period_end)))


def renewal_payable(*, account_id: int, invoice: Document) -> bool:
    """Whether Pay now can pay ``invoice`` of ``account_id``: a renewal invoice between two
    dunning attempts (refused, or awaiting an authentication) with something left to pay."""
    return invoice.amount_due > 0 and Renewal.objects.filter(
        account_id=account_id, invoice_id=invoice.pk, status__in=BETWEEN_ATTEMPTS
    ).exists()


def renewal_needs_authentication(*, account_id: int, invoice: Document) -> bool:
    """Whether the last attempt on renewal ``invoice`` was not charged because the bank asks the
    customer to authenticate the payment (Pay now then says "Authenticate and pay")."""
    return Renewal.objects.filter(account_id=account_id, invoice_id=invoice.pk,
                                  status=RenewalStatus.REQUIRES_ACTION).exists()


def renewal_authenticating(*, account_id: int, invoice: Document) -> Payment | None:
    """The Pay now attempt on ``invoice`` whose authentication the customer has begun and not
    finished (its ``action_url`` is the bank's page to go back to), if any."""
    return (Payment.objects.filter(account_id=account_id, invoice_id=invoice.pk,
                                   status=PaymentStatus.REQUIRES_ACTION,
                                   completed_at__isnull=True)
            .exclude(action_url="").order_by("-id").first())


def renewal_receipt(invoice: Document, period: Period,
                    catalog: Catalog | None = None) -> dict[str, Any]:
    """The receipt context of a renewal invoice, as it stands now, its item from its saved charge
    line (as the billing run's road builds it from the line it writes)."""
    return receipt_context_for_renewal(
        number=invoice.number or "", head=invoice, lines=invoice.lines.all(),
        catalog=catalog or catalog_snapshot(), period=period)


def renewal_record(
    *, subscription_id: int, at: datetime, catalog: Catalog | None = None,
) -> Renewal | None:
    """Renew one subscription for the period after its current one, through the ORM: the road
    the billing run takes one renewal at a time (a chunk that failed), and the same rows as its
    set-based road (:mod:`prorata.billing.writer` builds both; a parity test compares them).

    Only an ``active``, auto-renewing subscription whose period has ended by ``at`` is renewed;
    returns None otherwise. Writes the invoice (numbered, with its snapshot), its line and
    ledger entry, the renewal row, the pending card payment (or, paid by credit, the receipt),
    and moves the subscription to its next period. Call inside a transaction; takes the account
    and subscription locks. The period is invoiced once (unique renewal per period).
    """
    account_id = (Subscription.objects.filter(pk=subscription_id)
                  .values_list("account_id", flat=True).first())
    if account_id is None:
        return None
    account = lock_account(account_id)
    (subscription,) = lock_subscriptions(account_id=account_id, ids=[subscription_id]) or (None,)
    if (subscription is None or subscription.status != SubscriptionStatus.ACTIVE
            or not subscription.auto_renew or subscription.period_end > at):
        return None
    currency = subscription.currency
    catalog = catalog or catalog_snapshot()
    order = renewal_order(
        catalog=catalog, plan_code=subscription.plan.code,
        cycle_code=subscription.cycle.code, quantity=subscription.quantity,
        unit_amount=subscription.unit_amount, currency=currency,
        period=Period(subscription.period_start, subscription.period_end),
        anchor=subscription.anchor, invoiced_amount=subscription.invoiced_amount,
        tax=account_tax(account, at), credit=account_balance(account, currency).amount, at=at)
    card = default_cards({account_id}).get(account_id)
    rows = renewal_build(
        order=order, subscription_id=subscription_id, account_id=account_id,
        corporate=account.billing_mode == BillingMode.CORPORATE,
        payment_terms_days=account.payment_terms_days, card_id=card.pk if card else None,
        card_label=card.label if card else "", at=at)
    invoice = document_save(rows.document, account=account)
    documents_finalize(documents=[invoice])
    if rows.payment is not None:
        Payment.objects.create(invoice=invoice, **rows.payment._asdict())
    renewal = Renewal.objects.create(invoice=invoice, **rows.renewal._asdict())
    Subscription.objects.filter(pk=subscription_id).update(
        period_start=order.period.start, period_end=order.period.end,
        invoiced_amount=rows.invoiced_amount, invoice=invoice, version=F("version") + 1)
    ledger_append(account=account, currency=currency, at=at, movements=[
        Movement(LedgerKind.INVOICE, document_entry_amount(rows.document.head), document=invoice,
                 memo=ledger_memo(LedgerKind.INVOICE.value, number=invoice.number or "")),
    ])
    if rows.settled:
        receipt_enqueue(account=account, document=invoice,
                        context=renewal_receipt(invoice, order.period, catalog))
    return renewal


def renewal_dunning_ended(*, renewal: Renewal, account: Account, at: datetime) -> Document | None:
    """Close the unpaid invoice of ``renewal`` at the end of dunning (every attempt failed): a
    credit note voids it whole (:func:`~prorata.billing.writer.credit_note_voiding`), the invoice
    is ``void`` with nothing due, and the ledger takes the credit note's credit, so the balance
    no longer shows a debt for a period that was not paid (ADR 0004, "The end of dunning").
    Returns the credit note (None when nothing was left due: paid meanwhile by transfer).
    Inside the caller's transaction, under the account's lock."""
    invoice = Document.objects.get(pk=renewal.invoice_id)
    if invoice.amount_due == 0 or invoice.status != DocumentStatus.OPEN:
        return None
    rows = credit_note_voiding(document_rows(invoice, list(invoice.lines.all())),
                               invoice_id=invoice.pk, at=at)
    note = document_save(rows, account=account, refers_to=invoice)
    documents_finalize(documents=[note])
    due = invoice.amount_due
    invoice.status, invoice.amount_due = DocumentStatus.VOID, 0
    invoice.save(update_fields=["status", "amount_due"])
    ledger_append(account=account, currency=note.currency, at=at, movements=[
        Movement(LedgerKind.CREDIT_NOTE, document_entry_amount(rows.head), document=note,
                 memo=ledger_memo(LedgerKind.CREDIT_NOTE.value, number=note.number or "")),
    ])
    audit_record(actor=None, action="invoice.void", account=account, obj=invoice,
                 before={"status": DocumentStatus.OPEN.value, "amount_due": due},
                 after={"status": DocumentStatus.VOID.value, "credit_note": note.number,
                        "reason": "dunning_ended"})
    return note


def voided_by(invoice: Document) -> Document | None:
    """The credit note that voided ``invoice``, if it is void."""
    if invoice.status != DocumentStatus.VOID:
        return None
    return (Document.objects.filter(refers_to=invoice, kind=DocumentKind.CREDIT_NOTE)
            .order_by("id").first())


@dataclass(frozen=True)
class PayNow:
    """What Pay now did. ``status``: ``paid``; ``pending`` (the bank's answer is unknown: the
    next run settles it with the same idempotency key); or ``requires_action``: the bank asks
    the customer to authenticate the payment at ``action_url`` (the gateway's page, which sends
    them back to :func:`renewal_return_url`), nothing charged yet."""

    status: str
    action_url: str = ""


def renewal_return_url(*, account_id: int, invoice_id: int, site_url: str = "") -> str:
    """Where the gateway sends the customer back after authenticating a Pay now payment: the
    billing center's return page (:func:`renewal_payment_confirm`), absolute, under ``site_url``
    (the address the customer is using), by default ``PRORATA_BASE_URL``."""
    path = reverse("billing:pay_return", args=[account_id, invoice_id])
    return f"{site_url.rstrip('/')}{path}" if site_url else absolute_url(path)


def renewal_pay_now(*, account: Account, user: User, invoice_id: int,
                    site_url: str = "") -> PayNow:
    """Pay the open invoice of a past-due renewal now, with the account's default card (a billing
    contact, from the billing center), the customer present (the charge's description in their
    language, the request's, as their bank's page shows it). Returns :class:`PayNow`.

    Success ends ``past_due`` (the same recording as the billing run's). A refused card raises
    :class:`~prorata.subscriptions.errors.PaymentFailed`, and the dunning schedule goes on as it
    was: a customer's own attempt does not bring a retry or the expiry closer. When the bank asks
    the customer to authenticate the payment (3-D Secure), the attempt waits for them
    (``requires_action``, ``action_url`` the gateway's page; ``site_url`` as in
    :func:`renewal_return_url`) and :func:`renewal_payment_confirm` settles it; Pay now again
    meanwhile is :class:`~prorata.billing.errors.AuthenticationInProgress` (409) while the bank
    still waits for it.
    """
    from prorata.subscriptions.errors import PaymentFailed

    # An earlier attempt still awaiting its authentication is settled first if the gateway
    # knows its end (failed, expired: a new attempt may start; paid: nothing is left to pay).
    renewal_payment_confirm(account_id=account.pk, invoice_id=invoice_id)
    at = now()
    renewal, card, payment = _pay_now_attempt(account=account, user=user, invoice_id=invoice_id,
                                              at=at)
    try:
        result = get_gateway().charge(
            token=PaymentMethod.objects.get(pk=card.pk).token,
            amount=Money(payment.amount, payment.currency),
            idempotency_key=payment.idempotency_key,
            description=gettext("Invoice %(number)s") % {"number": renewal.invoice.number},
            off_session=False,
            return_url=renewal_return_url(account_id=account.pk, invoice_id=renewal.invoice_id,
                                          site_url=site_url),
        )
    except ProrataError:
        raise
    except Exception:
        # No answer (a timeout, an HTTP 500): maybe charged. The attempt stays pending, as for
        # an unknown outcome, and the charge step drives it again with the same key (it was a
        # 500 page, the attempt left in ``charging`` until then all the same).
        logger.exception("Gateway charge for Pay now payment %s did not answer", payment.pk)
        return PayNow("pending")
    faults.point("after_gateway_call")
    if result.outcome is ChargeOutcome.SUCCEEDED:
        renewal_payment_succeeded(payment_id=payment.pk, reference=result.reference, at=at)
        faults.point("after_payment_commit")
        return PayNow("paid")
    if result.outcome is ChargeOutcome.UNKNOWN:
        return PayNow("pending")
    if result.outcome is ChargeOutcome.REQUIRES_ACTION and result.action_url:
        _pay_now_authenticating(payment_id=payment.pk, result=result)
        return PayNow("requires_action", result.action_url)
    code, message = result.outcome.value, result.message
    if result.outcome is ChargeOutcome.REQUIRES_ACTION:  # and no page to do it on
        code, message = "authentication_failed", AUTHENTICATION_UNAVAILABLE
    _pay_now_declined(account=account, renewal=renewal, payment=payment, code=code,
                      message=message, at=at)
    raise PaymentFailed(message, code=code, invoice=renewal.invoice.number)


def renewal_payment_confirm(*, account_id: int, invoice_id: int, at: datetime | None = None,
                            abandon_after: timedelta | None = None, notify: bool = False) -> str:
    """The customer is back from authenticating the Pay now payment of renewal invoice
    ``invoice_id`` (or a webhook announced its outcome, or the reconciliation job looks at it):
    the gateway is asked by the payment's idempotency key (outside any transaction) and the
    attempt is settled once, whoever comes first (under the account's lock):

    - authenticated and charged: ``"paid"`` (the invoice paid, the renewal settled, the receipt);
    - authentication failed or expired: ``"failed"`` (``authentication_failed``, the bank's
      message), the renewal back between its dunning attempts, the schedule unchanged;
    - not answered yet: ``"requires_action"``; with ``abandon_after`` (the job), an attempt
      older than that at ``at`` fails instead (``authentication_abandoned``);
    - no attempt awaiting an authentication (settled before): ``"settled_before"``.

    ``notify`` (the job: the customer is not there to read the page) e-mails a failure to the
    billing contacts (``payment_failed``, with the Pay now link), as the checkout's job does.
    Never charges. ``at``: by default the project clock.
    """
    at = at or now()
    payment = (Payment.objects.filter(account_id=account_id, invoice_id=invoice_id,
                                      status=PaymentStatus.REQUIRES_ACTION,
                                      completed_at__isnull=True).order_by("-id").first())
    if payment is None:
        return "settled_before"
    try:
        found = get_gateway().lookup(idempotency_key=payment.idempotency_key)
    except Exception:  # a lookup that fails proves nothing: the payment may have been charged
        found = None
        abandon_after = None
    if found is not None and found.outcome is ChargeOutcome.SUCCEEDED:
        recorded = renewal_payment_succeeded(payment_id=payment.pk, reference=found.reference,
                                             at=at)
        return "paid" if recorded else "settled_before"
    if found is not None and found.outcome in (ChargeOutcome.DECLINED,
                                               ChargeOutcome.INSUFFICIENT_FUNDS):
        code, message = "authentication_failed", found.message
    elif found is not None and found.outcome is ChargeOutcome.UNKNOWN:
        return "requires_action"  # the gateway does not know yet: never given up on blindly
    elif abandon_after is not None and payment.created_at <= at - abandon_after:
        code, message = "authentication_abandoned", AUTHENTICATION_ABANDONED
    else:
        return "requires_action"
    renewal = Renewal.objects.select_related("invoice").get(invoice_id=invoice_id)
    account = Account.objects.get(pk=account_id)
    return ("failed" if _pay_now_declined(account=account, renewal=renewal, payment=payment,
                                          code=code, message=message, at=at, notify=notify)
            else "settled_before")


def renewal_authentications_reconcile(*, at: datetime | None = None) -> dict[str, int]:
    """The reconciliation job's share of renewals: every Pay now attempt still awaiting its
    authentication is looked at by :func:`renewal_payment_confirm`, and given up on after
    :data:`AUTHENTICATION_TIMEOUT` (at ``at``, by default the project clock), so that a customer
    who never comes back leaves the renewal between its dunning attempts, retried on schedule,
    rather than held in ``charging``. Returns ``{"renewals_paid", "renewals_failed",
    "renewals_waiting"}``."""
    at = at or now()
    counts = {"renewals_paid": 0, "renewals_failed": 0, "renewals_waiting": 0}
    waiting = (Payment.objects.filter(status=PaymentStatus.REQUIRES_ACTION,
                                      completed_at__isnull=True, order__isnull=True,
                                      invoice__isnull=False)
               .order_by("created_at", "id").values_list("account_id", "invoice_id"))
    for account_id, invoice_id in waiting:
        outcome = renewal_payment_confirm(account_id=account_id, invoice_id=invoice_id, at=at,
                                          abandon_after=AUTHENTICATION_TIMEOUT, notify=True)
        key = {"paid": "renewals_paid", "failed": "renewals_failed",
               "requires_action": "renewals_waiting"}.get(outcome)
        if key:
            counts[key] += 1
    return counts


# Each transaction of Pay now is retried alone on a serialization failure or SQLite's lock (the
# gateway call between them never is: its idempotency key settles a repeat).

@retry_transient
def _pay_now_attempt(*, account: Account, user: User, invoice_id: int,
                     at: datetime) -> tuple[Renewal, Card, Payment]:
    """Pay now's first transaction: under the account lock, the renewal still owed and a
    pending attempt on the default card (audited)."""
    from prorata.subscriptions.errors import PaymentMethodRequired

    with transaction.atomic():
        lock_account(account.pk)
        renewal = (Renewal.objects.select_related("invoice")
                   .filter(account_id=account.pk, invoice_id=invoice_id).first())
        if renewal is None:
            raise NothingToPay("There is no renewal invoice with this number on the account.",
                               invoice=invoice_id)
        if renewal.status == RenewalStatus.CHARGING and renewal_authenticating(
                account_id=account.pk, invoice=renewal.invoice) is not None:
            raise AuthenticationInProgress(
                f"The bank is still waiting for the authentication of the last payment of "
                f"invoice {renewal.invoice.number}: finish it on the bank's page first.",
                invoice=renewal.invoice.number)
        if renewal.status not in BETWEEN_ATTEMPTS or renewal.invoice.amount_due == 0:
            raise NothingToPay(f"Invoice {renewal.invoice.number} has nothing left to pay now.",
                               invoice=renewal.invoice.number)
        card = default_cards({account.pk}).get(account.pk)
        if card is None:
            raise PaymentMethodRequired(
                "Add a card in Payment methods first: it becomes your default card.")
        payment = renewal_attempt_create(renewal=renewal, card=card, at=at)
        audit_record(actor=user, action="renewal.pay_now", account=account, obj=payment,
                     after={"invoice": renewal.invoice.number, "amount": payment.amount,
                            "currency": payment.currency})
    return renewal, card, payment


@retry_transient
def _pay_now_authenticating(*, payment_id: int, result: ChargeResult) -> None:
    """The bank asks the customer to authenticate Pay now's attempt: it waits for them
    (``requires_action``, not completed) at the gateway's page."""
    with transaction.atomic():
        Payment.objects.filter(pk=payment_id, status=PaymentStatus.PENDING).update(
            status=PaymentStatus.REQUIRES_ACTION, reference=result.reference[:255],
            action_url=result.action_url[:1000], message=result.message[:2000])


@retry_transient
def _pay_now_declined(*, account: Account, renewal: Renewal, payment: Payment, code: str,
                      message: str, at: datetime, notify: bool = False) -> bool:
    """Record a refused Pay now (its card refused, or its authentication failed or abandoned):
    the attempt failed (the ``invoice.payment_failed`` event), the renewal between its dunning
    attempts again (``requires_action`` while the bank still wants an authentication), its
    schedule as it was; with ``notify``, the billing contacts e-mailed (``payment_failed``: why,
    what is due, the next retry, the Pay now link). Returns False when the attempt was settled
    already."""
    with transaction.atomic():
        lock_account(account.pk)
        failed = Payment.objects.filter(
            pk=payment.pk, status__in=[PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION],
            completed_at__isnull=True,
        ).update(status=PaymentStatus.FAILED, failure_code=code, message=message[:2000],
                 completed_at=at)
        if failed:
            payment.refresh_from_db()
            invoice_payment_failed(invoice=renewal.invoice, payment=payment)
        Renewal.objects.filter(pk=renewal.pk, status=RenewalStatus.CHARGING).update(
            status=(RenewalStatus.REQUIRES_ACTION if code in _AUTHENTICATION_CODES
                    else RenewalStatus.RETRYING))
        if failed and notify:
            _pay_now_failed_mail(account=account, renewal=renewal, payment=payment)
    return bool(failed)


def subscription_item(subscription: Subscription) -> dict[str, Any]:
    """A subscription as an e-mail names it (``outbox.TEMPLATES``' item shape)."""
    return {"product": subscription.product.name, "plan": subscription.plan.name,
            "licenses": subscription.quantity, "cycle": subscription.cycle.code,
            "previous": None}


def _pay_now_failed_mail(*, account: Account, renewal: Renewal, payment: Payment) -> None:
    """``payment_failed`` to the billing contacts for a Pay now attempt settled in the
    customer's absence (an authentication abandoned or expired): the same e-mail as a refused
    renewal charge, linking to Pay now (inside the caller's transaction)."""
    renewal = Renewal.objects.select_related(
        "invoice", "subscription__product", "subscription__plan", "subscription__cycle",
    ).get(pk=renewal.pk)
    invoice = renewal.invoice
    context: dict[str, Any] = {
        "amount_due": money_json(invoice.amount_due, payment.currency),
        "document_number": invoice.number, "reason": payment.message,
        "items": [subscription_item(renewal.subscription)],
        "url": reverse("billing:pay", args=[account.pk, invoice.pk]),
    }
    if renewal.next_attempt_at is not None:
        context["next_retry_at"] = format_instant(renewal.next_attempt_at)
    notify_billing_contacts(account=account, template="payment_failed", context=context,
                            dedupe_key=f"payment_failed:{payment.pk}")
