"""The staff's money actions: refunding a paid invoice (with a second approval above the
operators' threshold) and granting account credit. Who, on whose behalf, why and from which IP is
recorded on the row and in the audit log of the same transaction.

Refund of a paid invoice, whole or in part (:func:`refund_request`, :func:`refund_approve`):
1. under the account's lock, the amount is checked against what is left to refund on the
   invoice: its succeeded card payments − their refunds pending or done − the refunds of the
   invoice still awaiting approval (reserved). So two refunds started at once never both pass.
2. above :attr:`StaffLimits.refund_approval_above` the request waits (reserving its amount) for a
   second staff member, never the one who asked;
3. otherwise, in that same transaction: a credit note referring to the invoice (gapless series),
   its ledger entry (+amount: credit), and a pending gateway refund (the billing ``Refund`` row);
4. the gateway is called outside any transaction with the refund's idempotency key; then, under the
   lock: succeeded → the refund's ledger entry (−amount), the credit note paid, the refund receipt
   e-mailed with the credit note's PDF; refused → the credit note stays unpaid and its amount stays
   on the account as credit, and the staff member is told.
The same form submitted twice (its ``idempotency_key``) refunds once.

The credit note of a partial refund is one line at the invoice's tax rate whose amount plus tax is
exactly the refund (amount ``n`` with ``n + round(n × rate) = refund``); a refund amount no ``n``
reaches (a cent between two roundings) is refused with the nearest amounts. A whole refund of a
never-credited invoice reverses its lines one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils.translation import gettext_noop

from prorata.accounts.models import Account, StaffRole, User
from prorata.accounts.permissions import staff_roles
from prorata.accounts.services import audit_record
from prorata.billing.credit import credit_settle_open_invoices, settlements_json
from prorata.billing.locks import lock_account
from prorata.billing.models import (
    Document,
    DocumentKind,
    DocumentStatus,
    LedgerKind,
    Payment,
    PaymentMethodKind,
    PaymentStatus,
    Refund,
)
from prorata.billing.selectors import credit_balance
from prorata.billing.services import (
    DraftLine,
    Movement,
    document_draft,
    documents_finalize,
    ledger_append,
    notify_billing_contacts,
    receipt_enqueue,
)
from prorata.billing.writer import receipt_context_for_refund
from prorata.common.cardnumbers import mask_card_numbers
from prorata.common.clock import now
from prorata.common.db import retry_transient
from prorata.console.errors import StaffActionRefused, StaffNotPermitted
from prorata.console.models import (
    CreditAdjustment,
    StaffLimits,
    StaffRefund,
    StaffRefundStatus,
)
from prorata.notifications.context import money_json
from prorata.payments.gateway import ChargeOutcome
from prorata.support.models import SupportRequest
from prorata.support.services import support_request_resolve
from prorata_core.errors import ValidationError
from prorata_core.money import Money, round_half_away
from prorata_core.orders import LineKind, OrderLine
from prorata_core.periods import Period
from prorata_core.tax import TaxDecision, TaxRule

REASON_MAX = 500


# --- who may ------------------------------------------------------------------------------------

def may_handle_money(user: User, account: Account) -> bool:
    """Support agents and superusers for every account, an advisor for the accounts they advise;
    operators never (they run the catalog)."""
    if not (user.is_active and user.is_staff):
        return False
    if user.is_superuser:
        return True
    roles = staff_roles(user)
    return StaffRole.SUPPORT_AGENT in roles or (
        StaffRole.CORPORATE_ADVISOR in roles and account.advisor_id == user.pk)


def _require(user: User, account: Account) -> None:
    if not may_handle_money(user, account):
        raise StaffNotPermitted(gettext_noop(
            "Only a support agent or the account's advisor refunds or credits this account."))


def _reason(reason: str) -> str:
    text = (reason or "").strip()
    if not text or len(text) > REASON_MAX:
        raise ValidationError(gettext_noop(
            "Give the reason, 1 to 500 characters: it is kept in the audit log."))
    return mask_card_numbers(text)  # staff paste from the customer's message too


def staff_limits(currency: str) -> StaffLimits:
    """The operators' limits for ``currency`` (the defaults until they set some)."""
    found = StaffLimits.objects.filter(currency=currency).first()
    return found if found is not None else StaffLimits(currency=currency)


# --- what is left to refund ---------------------------------------------------------------------

@dataclass(frozen=True)
class Refundable:
    """What may still be refunded on an invoice (minor units), and the card payments it is on."""

    amount: int
    payments: tuple[tuple[Payment, int], ...]  # (payment, what is left of it), oldest first


def invoice_refundable(invoice: Document, *, excluding: StaffRefund | None = None) -> Refundable:
    """Succeeded card payments of ``invoice`` − their refunds pending or succeeded − refunds of the
    invoice awaiting approval (reserved), except ``excluding``. Read under the account lock for a
    decision."""
    left: list[tuple[Payment, int]] = []
    for payment in invoice.payments.filter(status=PaymentStatus.SUCCEEDED,
                                           method=PaymentMethodKind.CARD).order_by("id"):
        refunded = payment.refunds.filter(
            status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.PENDING]
        ).aggregate(total=Sum("amount"))["total"] or 0
        if payment.amount > refunded:
            left.append((payment, payment.amount - refunded))
    waiting = StaffRefund.objects.filter(invoice=invoice,
                                         status=StaffRefundStatus.AWAITING_APPROVAL)
    if excluding is not None:
        waiting = waiting.exclude(pk=excluding.pk)
    reserved = waiting.aggregate(total=Sum("amount"))["total"] or 0
    total = sum(amount for _payment, amount in left) - reserved
    return Refundable(max(total, 0), tuple(left))


def _refund_lines(invoice: Document, amount: int, *, may_reverse: bool = True
                  ) -> list[DraftLine]:
    """The credit note's lines for ``amount`` (tax included) of ``invoice``: its lines reversed
    for a whole refund of a never-credited invoice (``may_reverse``), else one line at its rate."""
    lines = list(invoice.lines.all())
    credited = Document.objects.filter(refers_to=invoice, kind=DocumentKind.CREDIT_NOTE,
                                       number__isnull=False).exists()
    currency = invoice.currency
    if may_reverse and amount == invoice.total and not credited:
        return [DraftLine(OrderLine(
            kind=LineKind.CREDIT if line.amount >= 0 else LineKind.CHARGE,
            description=f"Refund of invoice {invoice.number}: {line.description}",
            plan_code=line.plan_code, cycle_code=line.cycle_code, quantity=line.quantity,
            period=Period(line.period_start, line.period_end),
            unit_amount=Money(-line.unit_amount, currency),
            ratio=Fraction(line.ratio_numerator, line.ratio_denominator),
            amount=Money(-line.amount, currency), tax_rate_bp=line.tax_rate_bp,
            tax=Money(-line.tax, currency)), subscription_id=line.subscription_id)
            for line in lines]
    rates = {line.tax_rate_bp for line in lines if line.amount}
    if len(rates) != 1:
        raise StaffActionRefused(gettext_noop(
            "This invoice has lines at several tax rates: refund it whole."))
    rate = rates.pop()

    def gross(net: int) -> int:
        return net + round_half_away(net * rate, 10_000)

    guess = amount * 10_000 // (10_000 + rate)
    for net in range(max(guess - 2, 1), guess + 3):
        if gross(net) == amount:
            break
    else:
        below = max((gross(n) for n in range(max(guess - 2, 1), guess + 3) if gross(n) < amount),
                    default=0)
        above = min(gross(n) for n in range(guess, guess + 4) if gross(n) > amount)
        raise StaffActionRefused(
            gettext_noop("No refund of exactly %(amount)s exists at this invoice's tax rate "
                         "(amount and tax are each rounded to the cent): refund %(below)s or "
                         "%(above)s."),
            amount=str(Money(amount, currency)), below=str(Money(below, currency)),
            above=str(Money(above, currency)))
    first = lines[0]
    period = Period(first.period_start, first.period_end)
    return [DraftLine(OrderLine(
        kind=LineKind.CREDIT, description=f"Partial refund of invoice {invoice.number}",
        plan_code=first.plan_code, cycle_code=first.cycle_code, quantity=1, period=period,
        unit_amount=Money(-net, currency), ratio=Fraction(1), amount=Money(-net, currency),
        tax_rate_bp=rate, tax=Money(-(amount - net), currency)))]


def _tax_of(invoice: Document) -> TaxDecision:
    rate = next((line.tax_rate_bp for line in invoice.lines.all()), 0)
    return TaxDecision(rate_bp=rate, rule=TaxRule(invoice.tax_rule),
                       country=invoice.account.country, mention=invoice.tax_mention or None)


# --- refunds ------------------------------------------------------------------------------------

def refund_request(
    *, invoice: Document, amount: Money, reason: str, actor: User, idempotency_key: str,
    ip: str | None = None, support_request: SupportRequest | None = None,
) -> StaffRefund:
    """Refund ``amount`` (tax included) of a paid ``invoice`` on the customer's behalf (see the
    module docstring). Returns the :class:`StaffRefund`: ``refunded``, ``failed`` (the gateway
    refused; ``message`` says why), or ``awaiting`` approval. The same ``idempotency_key`` again
    returns the first one, whatever the amount. Raises :class:`StaffActionRefused` /
    :class:`StaffNotPermitted` / ``ValidationError`` with nothing written."""
    key = (idempotency_key or "").strip()
    if not key or len(key) > 100:
        raise ValidationError(gettext_noop("Reload the form: its submission key is missing."))
    replay = StaffRefund.objects.filter(idempotency_key=key).first()
    if replay is not None:
        return replay
    _require(actor, invoice.account)
    text = _reason(reason)
    try:
        staff_refund = _refund_open(invoice_id=invoice.pk, amount=amount, reason=text,
                                    actor=actor, key=key, ip=ip, support_request=support_request)
    except IntegrityError:  # the same submission, a moment earlier, in another request
        return StaffRefund.objects.get(idempotency_key=key)
    if staff_refund.status == StaffRefundStatus.PENDING:
        staff_refund = _refund_send(staff_refund)
    return staff_refund


@retry_transient
def _refund_open(*, invoice_id: int, amount: Money, reason: str, actor: User, key: str,
                 ip: str | None, support_request: SupportRequest | None) -> StaffRefund:
    with transaction.atomic():
        invoice = Document.objects.select_related("account").get(pk=invoice_id)
        account = lock_account(invoice.account_id)
        invoice = Document.objects.select_related("account").get(pk=invoice_id)
        _check_refundable(invoice, amount)
        at = now()
        limits = staff_limits(invoice.currency)
        waits = amount.amount > limits.refund_approval_above
        staff_refund = StaffRefund.objects.create(
            account=account, invoice=invoice, currency=amount.currency, amount=amount.amount,
            reason=reason, idempotency_key=key, requested_by=actor, requested_ip=ip,
            support_request=support_request, created_at=at,
            status=StaffRefundStatus.AWAITING_APPROVAL if waits else StaffRefundStatus.PENDING,
        )
        audit_record(actor=actor, action="refund.request", account=account, obj=staff_refund,
                     ip=ip, after={"invoice": invoice.number, "amount": amount.amount,
                                   "currency": amount.currency, "reason": reason,
                                   "needs_approval": waits,
                                   "threshold": limits.refund_approval_above})
        if not waits:
            _refund_issue(staff_refund, invoice, account)
    return staff_refund


def _check_refundable(invoice: Document, amount: Money, *,
                      excluding: StaffRefund | None = None) -> Refundable:
    if invoice.kind != DocumentKind.INVOICE or invoice.number is None:
        raise StaffActionRefused(gettext_noop("Only an issued invoice can be refunded."))
    if invoice.status != DocumentStatus.PAID:
        raise StaffActionRefused(
            gettext_noop("Invoice %(number)s is not paid: there is nothing to refund."),
            number=invoice.number)
    if amount.currency != invoice.currency:
        raise StaffActionRefused(
            gettext_noop("Refund in the invoice's currency, %(currency)s."),
            currency=invoice.currency)
    left = invoice_refundable(invoice, excluding=excluding)
    if not 0 < amount.amount <= left.amount:
        raise StaffActionRefused(
            gettext_noop("At most %(left)s can be refunded on invoice %(number)s: what was paid "
                         "by card, less what was refunded or awaits approval."),
            left=str(Money(left.amount, invoice.currency)), number=invoice.number)
    return left


def _refund_issue(staff_refund: StaffRefund, invoice: Document, account: Account) -> None:
    """In the caller's transaction, under the account lock: the credit note (unpaid until the
    money is back on the card), its ledger entry, and the pending gateway refund(s)."""
    left = _check_refundable(invoice, Money(staff_refund.amount, staff_refund.currency),
                             excluding=staff_refund)
    credit_note = document_draft(
        account=account, kind=DocumentKind.CREDIT_NOTE, lines=_refund_lines(invoice,
                                                                           staff_refund.amount),
        at=now(), tax=_tax_of(invoice), currency=invoice.currency, refers_to=invoice,
    )
    credit_note.status, credit_note.paid_at = DocumentStatus.OPEN, None
    credit_note.save(update_fields=["status", "paid_at"])
    documents_finalize(documents=[credit_note])
    ledger_append(account=account, currency=invoice.currency, at=credit_note.issued_at,
                  movements=[Movement(LedgerKind.CREDIT_NOTE, -credit_note.total,
                                      document=credit_note,
                                      memo=f"Credit note {credit_note.number}")])
    # One gateway refund, on the first card payment that covers it (a split over two payments
    # would need two refunds that could half fail: refused instead).
    payment = next((p for p, rest in left.payments if rest >= staff_refund.amount), None)
    if payment is None:
        raise StaffActionRefused(gettext_noop(
            "This refund spans several card payments: refund each payment's part separately."))
    refund = Refund.objects.create(
        account=account, payment=payment, currency=staff_refund.currency,
        amount=staff_refund.amount, status=PaymentStatus.PENDING, idempotency_key="",
        memo=f"Refund of invoice {invoice.number} (credit note {credit_note.number})"[:300],
        actor=staff_refund.approved_by or staff_refund.requested_by, created_at=now(),
    )
    refund.idempotency_key = f"prorata:refund:{refund.pk}"
    refund.save(update_fields=["idempotency_key"])
    staff_refund.status = StaffRefundStatus.PENDING
    staff_refund.credit_note, staff_refund.refund = credit_note, refund
    staff_refund.save(update_fields=["status", "credit_note", "refund"])


def _refund_send(staff_refund: StaffRefund) -> StaffRefund:
    """Call the gateway (outside any transaction), then record its answer."""
    from prorata.payments.gateway import get_gateway

    refund = staff_refund.refund
    if refund is None:  # pragma: no cover - a pending staff refund always has its refund row
        raise StaffActionRefused("This refund has no gateway refund to send.")
    try:
        result = get_gateway().refund(reference=refund.payment.reference,
                                      amount=Money(refund.amount, refund.currency),
                                      idempotency_key=refund.idempotency_key)
    except Exception as error:  # no answer: the refund stays pending, to be sent again by its key
        return _refund_record(staff_refund.pk, succeeded=None, reference="",
                              message=f"The payment provider did not answer ({error}).")
    if result.outcome == ChargeOutcome.UNKNOWN:  # likewise, said by the gateway
        return _refund_record(staff_refund.pk, succeeded=None, reference=result.reference,
                              message=result.message)
    return _refund_record(staff_refund.pk, succeeded=result.succeeded, reference=result.reference,
                          message=result.message)


def staff_refund_answered(*, refund: Refund, succeeded: bool, reference: str,
                          message: str) -> bool:
    """Record the gateway's late answer for the gateway refund of a staff refund still pending
    (:func:`prorata.billing.services.refunds_settle`), as :func:`_refund_send` records a prompt
    one. ``False`` when ``refund`` is no staff refund's."""
    staff_refund = StaffRefund.objects.filter(refund=refund).first()
    if staff_refund is None:
        return False
    _refund_record(staff_refund.pk, succeeded=succeeded, reference=reference, message=message)
    return True


@retry_transient
def _refund_record(staff_refund_id: int, *, succeeded: bool | None, reference: str,
                   message: str) -> StaffRefund:
    with transaction.atomic():
        staff_refund = StaffRefund.objects.get(pk=staff_refund_id)
        account = lock_account(staff_refund.account_id)
        staff_refund = StaffRefund.objects.select_related("refund", "credit_note", "invoice").get(
            pk=staff_refund_id)
        refund, credit_note = staff_refund.refund, staff_refund.credit_note
        if refund is None or credit_note is None:  # pragma: no cover - set together when issued
            raise StaffActionRefused("This refund has no credit note or gateway refund.")
        if staff_refund.status != StaffRefundStatus.PENDING or succeeded is None:
            if succeeded is None:
                staff_refund.message = message[:300]
                staff_refund.save(update_fields=["message"])
            return staff_refund
        at = now()
        refund.status = PaymentStatus.SUCCEEDED if succeeded else PaymentStatus.FAILED
        refund.reference = reference[:255]
        refund.save(update_fields=["status", "reference"])
        if succeeded:
            ledger_append(account=account, currency=refund.currency, at=at, movements=[
                Movement(LedgerKind.REFUND, -refund.amount, payment=refund.payment,
                         refund=refund, memo=refund.memo)])
            credit_note.status, credit_note.paid_at = DocumentStatus.PAID, at
            credit_note.save(update_fields=["status", "paid_at"])
            staff_refund.status = StaffRefundStatus.REFUNDED
            staff_refund.message = ""
            # The credit note's receipt, built as every receipt is (S12): its PDF attached,
            # its page linked, once per reader.
            receipt_enqueue(account=account, document=credit_note,
                            context=receipt_context_for_refund(
                                number=credit_note.number or "", currency=refund.currency,
                                amount_refunded=refund.amount,
                                invoice_number=staff_refund.invoice.number or "",
                                method=refund.payment.method_label))
        else:
            staff_refund.status = StaffRefundStatus.FAILED
            staff_refund.message = (message or "The payment provider refused the refund.")[:300]
        staff_refund.decided_at = at
        staff_refund.save(update_fields=["status", "message", "decided_at"])
        audit_record(actor=staff_refund.approved_by or staff_refund.requested_by,
                     action="refund.complete", account=account, obj=staff_refund,
                     after={"status": staff_refund.status, "credit_note": credit_note.number,
                            "amount": refund.amount, "currency": refund.currency,
                            "gateway_reference": refund.reference, "message": message})
        if succeeded and staff_refund.support_request_id is not None:
            support_request_resolve(support_request=staff_refund.support_request,
                                    actor=staff_refund.approved_by or staff_refund.requested_by)
    return staff_refund


def refund_approve(*, staff_refund: StaffRefund, actor: User, ip: str | None = None
                   ) -> StaffRefund:
    """A second staff member approves a refund awaiting approval: never the one who asked. The
    amount is checked again under the lock, then refunded as in :func:`refund_request`."""
    _require(actor, staff_refund.account)
    opened = _approve(staff_refund_id=staff_refund.pk, actor=actor, ip=ip)
    if opened.status == StaffRefundStatus.PENDING:
        opened = _refund_send(opened)
    return opened


@retry_transient
def _approve(*, staff_refund_id: int, actor: User, ip: str | None) -> StaffRefund:
    with transaction.atomic():
        staff_refund = StaffRefund.objects.get(pk=staff_refund_id)
        account = lock_account(staff_refund.account_id)
        staff_refund = StaffRefund.objects.select_related("invoice").get(pk=staff_refund_id)
        if staff_refund.status != StaffRefundStatus.AWAITING_APPROVAL:
            raise StaffActionRefused(gettext_noop("This refund is no longer awaiting approval."))
        if staff_refund.requested_by_id == actor.pk:
            raise StaffActionRefused(gettext_noop(
                "A second staff member approves this refund: not the one who asked for it."))
        staff_refund.approved_by, staff_refund.approved_ip = actor, ip
        staff_refund.save(update_fields=["approved_by", "approved_ip"])
        audit_record(actor=actor, action="refund.approve", account=account, obj=staff_refund,
                     ip=ip, after={"amount": staff_refund.amount,
                                   "currency": staff_refund.currency,
                                   "requested_by": staff_refund.requested_by_id})
        _refund_issue(staff_refund, staff_refund.invoice, account)
    return staff_refund


def refund_reject(*, staff_refund: StaffRefund, actor: User, reason: str,
                  ip: str | None = None) -> StaffRefund:
    """Turn down a refund awaiting approval (its reservation ends)."""
    _require(actor, staff_refund.account)
    text = _reason(reason)
    with transaction.atomic():
        lock_account(staff_refund.account_id)
        row = StaffRefund.objects.get(pk=staff_refund.pk)
        if row.status != StaffRefundStatus.AWAITING_APPROVAL:
            raise StaffActionRefused(gettext_noop("This refund is no longer awaiting approval."))
        row.status, row.decided_at, row.message = StaffRefundStatus.REJECTED, now(), text[:300]
        row.save(update_fields=["status", "decided_at", "message"])
        audit_record(actor=actor, action="refund.reject", account=row.account, obj=row, ip=ip,
                     after={"reason": text})
    return row


# --- credit adjustments -------------------------------------------------------------------------

def credit_cap(user: User, currency: str) -> int | None:
    """The largest credit ``user`` may grant at once (minor units); None: no cap (superusers)."""
    if user.is_superuser:
        return None
    limits = staff_limits(currency)
    roles = staff_roles(user)
    caps = []
    if StaffRole.SUPPORT_AGENT in roles:
        caps.append(limits.agent_credit_cap)
    if StaffRole.CORPORATE_ADVISOR in roles:
        caps.append(limits.advisor_credit_cap)
    return max(caps) if caps else 0


@retry_transient
def credit_adjust(*, account: Account, amount: Money, reason: str, actor: User,
                  idempotency_key: str, ip: str | None = None) -> CreditAdjustment:
    """Grant ``amount`` of credit (tax included) to ``account``: a credit note on its latest paid
    or open invoice, at that invoice's tax rate, credited to the balance (used first on the next
    invoice, S8). Mandatory reason; at most the actor role's cap. The same key twice grants once."""
    key = (idempotency_key or "").strip()
    if not key or len(key) > 100:
        raise ValidationError(gettext_noop("Reload the form: its submission key is missing."))
    replay = CreditAdjustment.objects.filter(idempotency_key=key).first()
    if replay is not None:
        return replay
    _require(actor, account)
    text = _reason(reason)
    cap = credit_cap(actor, amount.currency)
    if amount.amount <= 0 or (cap is not None and amount.amount > cap):
        raise StaffActionRefused(
            gettext_noop("Grant between 0.01 and %(cap)s: the most your role may grant at once."),
            cap=str(Money(cap or 0, amount.currency)))
    with transaction.atomic():
        account = lock_account(account.pk)
        if account.currency and amount.currency != account.currency:
            raise StaffActionRefused(gettext_noop("Refund in the invoice's currency, %(currency)s."),
                                     currency=account.currency)
        invoice = (Document.objects.filter(account=account, kind=DocumentKind.INVOICE,
                                           number__isnull=False, currency=amount.currency)
                   .exclude(status=DocumentStatus.VOID).order_by("-issued_at", "-id").first())
        if invoice is None:
            raise StaffActionRefused(gettext_noop(
                "This account has no invoice yet: there is nothing to credit against."))
        lines = _refund_lines(invoice, amount.amount, may_reverse=False)
        lines = [DraftLine(line.line._replace(description=f"Credit: {text}"[:300]))
                 for line in lines]
        credit_note = document_draft(account=account, kind=DocumentKind.CREDIT_NOTE, lines=lines,
                                     at=now(), tax=_tax_of(invoice), currency=invoice.currency,
                                     refers_to=invoice)
        documents_finalize(documents=[credit_note])
        ledger_append(account=account, currency=invoice.currency, at=credit_note.issued_at,
                      movements=[Movement(LedgerKind.CREDIT_NOTE, -credit_note.total,
                                          document=credit_note,
                                          memo=f"Credit note {credit_note.number}")])
        adjustment = CreditAdjustment.objects.create(
            account=account, currency=amount.currency, amount=amount.amount, reason=text,
            idempotency_key=key, actor=actor, ip=ip, credit_note=credit_note, created_at=now())
        audit_record(actor=actor, action="credit.adjust", account=account, obj=adjustment, ip=ip,
                     after={"amount": amount.amount, "currency": amount.currency,
                            "reason": text, "credit_note": credit_note.number, "cap": cap})
        # The credit first pays what the account still owes, and the e-mail says so.
        settled = credit_settle_open_invoices(account=account, currency=invoice.currency,
                                              at=credit_note.issued_at, credit_note=credit_note)
        balance = credit_balance(account, invoice.currency)
        notify_billing_contacts(
            account=account, template="credit_granted",
            dedupe_key=f"credit:adjustment:{adjustment.pk}",
            attachments=[{"kind": "credit_note", "id": credit_note.pk}],
            context={"credit": money_json(amount.amount, amount.currency),
                     "balance": money_json(balance.amount, balance.currency),
                     "applied_to": settlements_json(settled),
                     "document_number": credit_note.number,
                     "url": reverse("billing:transactions", args=[account.pk])})
    return adjustment

