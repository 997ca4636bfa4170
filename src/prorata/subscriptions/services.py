"""Writes of subscriptions, the cart and orders: buying, changing and paying (DESIGN §3, §8).

The checkout (:func:`checkout_place`) follows DESIGN §8:

1. **one transaction**: the idempotency check (scoped to the account), the locks (account, then its
   subscriptions by id: :mod:`prorata.billing.locks`), the order priced again by the one engine and
   compared with what the customer saw (:class:`QuoteChanged` otherwise, with nothing written),
   then the order recorded ``placed`` with its payment ``pending``;
2. **outside any transaction**: the gateway charge, with the payment's idempotency key;
3. **one transaction**: on success the credit note(s) and the invoice finalised with gapless
   numbers, the ledger, the subscriptions, their history, the audit log and the receipt e-mails
   (outbox); on a refused card the order and payment marked failed and *nothing else* changed;
   on an unknown outcome the order stays placed until :func:`payment_reconcile` asks the gateway.

When nothing is to be charged (credit covers it, or a corporate invoice paid later by transfer),
steps 1 and 3 are one transaction and the gateway is not called. While an order of an account
awaits its payment, no other order of that account is placed (:class:`OrderInProgress`): the
credit balance and the subscriptions it was priced on stay as they were.

Staff act with ``by_staff=True``: the policy then allows what customers may not (plan downgrades,
corporate accounts, advisor-priced plans) with the same pricing, and the audit entry names them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils.translation import gettext, gettext_noop

from prorata.accounts.models import Account, User
from prorata.accounts.services import audit_entry, audit_record
from prorata.billing.credit import Settlement, credit_settle_open_invoices, settlements_json
from prorata.billing.locks import lock_account, lock_subscriptions
from prorata.billing.models import (
    AccountBalance,
    Document,
    DocumentKind,
    LedgerKind,
    Payment,
    PaymentMethodKind,
    PaymentStatus,
)
from prorata.billing.selectors import (
    credit_balance,
    default_currency,
    payments_to_reconcile,
    spendable_credit,
)
from prorata.billing.services import (
    DocumentDraft,
    DraftLine,
    Movement,
    OrderAccount,
    documents_issue,
    ledger_append,
    lock_account_for_order,
    notify_billing_contacts,
    receipt_enqueue,
)
from prorata.billing.writer import (
    ReceiptConfiguration,
    ReceiptItem,
    Recipient,
    document_build,
    ledger_memo,
    receipt_context,
)
from prorata.catalog.models import BillingCycle, Plan
from prorata.catalog.selectors import catalog_snapshot
from prorata.common import faults
from prorata.common.cardnumbers import mask_card_numbers
from prorata.common.clock import format_instant, now
from prorata.common.db import retry_transient
from prorata.common.urls import absolute_url
from prorata.licenses.receipts import license_receipt_context
from prorata.licenses.services import licenses_apply_order, licenses_check_order
from prorata.notifications.context import money_json
from prorata.payments.gateway import (
    OUTCOME_MESSAGES,
    ChargeOutcome,
    Gateway,
    TokenizedCard,
    get_gateway,
)
from prorata.payments.models import PaymentMethod
from prorata.subscriptions.errors import (
    CheckoutInProgress,
    IdempotencyConflict,
    OrderInProgress,
    PaymentFailed,
    PaymentMethodRequired,
    QuoteChanged,
)
from prorata.subscriptions.models import (
    CartItem,
    Order,
    OrderKindChoice,
    OrderStatus,
    Subscription,
    SubscriptionEvent,
    SubscriptionStatus,
)
from prorata.subscriptions.queries import checkout_reads, order_complete, order_place
from prorata.subscriptions.selectors import (
    CheckoutItem,
    CheckoutQuote,
    account_currency,
    account_tax,
    cart_items,
    checkout_quote,
    fingerprint,
    order_quote,
    price_items,
    quote_catalog,
    require_may_order,
    state_of,
    typed_vat_number,
)
from prorata.subscriptions.transitions import (
    subscription_describe,
    subscription_transition,
    transition_webhook,
)
from prorata.webhooks.events import WebhookBatch
from prorata_core.errors import NotInCatalog, ProrataError, ValidationError
from prorata_core.lifecycle import Event, Status
from prorata_core.money import Money
from prorata_core.orders import LineKind, OrderKind

logger = logging.getLogger(__name__)

__all__ = [
    "CheckoutItem",
    "CheckoutResult",
    "cart_add",
    "cart_items",
    "cart_remove",
    "checkout_place",
    "checkout_quote",
    "order_quote",
    "payment_reconcile",
    "subscription_start_trial",
]

#: What the customer sees when the gateway did not say whether the card was charged.
PAYMENT_UNCONFIRMED = (
    "We could not confirm the payment with your bank. Do not pay again: we will check it and "
    "let you know by e-mail."
)
PAYMENT_NOT_RECEIVED = (
    "Your payment did not reach the bank and nothing was charged. Place the order again."
)
ORDER_OUTDATED = (
    "Your subscription changed (it was renewed or modified) before your payment was confirmed, so "
    "this order was not applied and your payment is refunded. Review your subscription and place "
    "the order again if you still want the change."
)
PAYMENT_REFUSED = (
    "The payment provider refused this payment request and nothing was charged. Check your card "
    "or use another one, then place the order again."
)
AUTHENTICATION_UNAVAILABLE = gettext_noop(
    "Your bank asks you to authenticate this payment, but its page could not be opened, so "
    "nothing was charged. Place the order again, or use another card."
)
AUTHENTICATION_ABANDONED = gettext_noop(
    "The authentication of your payment with your bank was not completed, so nothing was charged "
    "and the order was not placed. Place the order again when you are ready."
)
_FAILURE_CODES = {
    ChargeOutcome.DECLINED: "payment_declined",
    ChargeOutcome.INSUFFICIENT_FUNDS: "insufficient_funds",
}


@dataclass(frozen=True)
class CheckoutResult:
    """What a checkout did. ``status`` is the order's: ``paid``, ``invoiced`` (corporate: the
    invoice awaits a transfer) or ``placed`` (the payment's outcome is being confirmed); or
    ``requires_action`` (the order is placed and waits: the customer's bank asks them to
    authenticate the payment at ``action_url``, the gateway's page, which sends them back to
    :func:`order_return_url`). ``replayed`` is true when this is the stored answer to an earlier
    request with the same key."""

    order: Order
    status: str
    invoice: Document | None
    credit_notes: tuple[Document, ...]
    amount_charged: Money
    credit_created: Money
    replayed: bool = False
    message: str = ""
    action_url: str = ""

    @property
    def next_billing_dates(self) -> dict[str, str]:
        return {item.product: format_instant(item.next_billing_date)
                for item in self.order.summary.items}


# --- the cart (S18) -----------------------------------------------------------------------------

def cart_add(
    *,
    account: Account,
    user: User,
    product_code: str,
    plan_code: str,
    cycle_code: str,
    quantity: int,
) -> CartItem:
    """Put a change in the account's cart (replacing the product's earlier item).

    The item is quoted first, so a change the policy refuses (a downgrade, a corporate account)
    never enters the cart; the refusal is raised with its message.
    """
    order_quote(account=account, user=user, product_code=product_code, plan_code=plan_code,
                cycle_code=cycle_code, quantity=quantity)
    plan = Plan.objects.select_related("product").get(code=plan_code)
    cycle = BillingCycle.objects.get(code=cycle_code)
    with transaction.atomic():
        item, _created = CartItem.objects.update_or_create(
            account=account, product=plan.product,
            defaults={"plan": plan, "cycle": cycle, "quantity": quantity, "created_at": now()},
        )
    return item


def cart_remove(*, account: Account, user: User, product_code: str) -> bool:
    """Take a product's item out of the cart; returns whether there was one."""
    require_may_order(user, account, by_staff=False)
    deleted, _ = CartItem.objects.filter(account=account, product__code=product_code).delete()
    return deleted > 0


# --- free trials ---------------------------------------------------------------------------------

def subscription_start_trial(
    *, account: Account, product_code: str, plan_code: str = "free_trial", actor: User | None = None
) -> Subscription:
    """Start a free trial of ``product_code`` (S16): one license for the plan's ``trial_days``,
    nothing invoiced; it is followed by a purchase or expires. Refused if the product is already
    subscribed (one subscription per product, a database constraint)."""
    catalog = catalog_snapshot()
    plan = catalog.plan(plan_code)
    if plan.trial_days is None or plan.product_code != product_code:
        raise ValidationError(f"{plan.name} is not a free trial of {product_code}.", plan=plan_code)
    at = now()
    with transaction.atomic():
        account = lock_account(account.pk)
        if Subscription.objects.filter(account=account, product__code=product_code).exists():
            raise ValidationError("This product is already subscribed; a free trial is for new "
                                  "customers.", product=product_code)
        plan_row = Plan.objects.select_related("product").get(code=plan_code)
        cycle = BillingCycle.objects.order_by("months").first()
        if cycle is None:
            raise ValidationError("The catalog has no billing period.")
        currency = account.currency or default_currency(account.country)
        subscription = Subscription(
            account=account, product=plan_row.product, plan=plan_row, cycle=cycle, quantity=1,
            currency=currency, unit_amount=0, auto_renew=False,
            anchor=at, period_start=at, period_end=at + timedelta(days=plan.trial_days),
            invoiced_amount=0, created_at=at,
        )
        subscription_transition(subscription=subscription, to=Status.TRIALING,
                                event=Event.TRIAL_STARTED, at=at, actor=actor)
        audit_record(actor=actor, action="subscription.start_trial", account=account,
                     obj=subscription, after=subscription_describe(subscription))
    return subscription


# --- the checkout ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Request:
    """A checkout request, validated: nothing is written before this exists."""

    key: str
    expected: tuple[str, ...]
    items: list[CheckoutItem]
    from_cart: bool
    vat_number: str | None
    fingerprint: str


@dataclass
class _Placed:
    """What step 1 recorded: the order, and the payment to send (``None`` when done already)."""

    order: Order
    payment: Payment | None = None
    token: str = ""
    result: CheckoutResult | None = None


def checkout_place(
    *,
    account: Account,
    user: User,
    idempotency_key: str,
    expected: Sequence[str] | str,
    items: Sequence[CheckoutItem] | None = None,
    payment_method_id: int | None = None,
    card_token: str | None = None,
    vat_number: str | None = None,
    by_staff: bool = False,
    site_url: str = "",
) -> CheckoutResult:
    """Place the order the customer confirmed: ``items`` (by default the cart) priced now, which
    must be exactly what they saw (``expected``: the quotes' fingerprints, in item order).

    ``idempotency_key`` (per account; a new one per attempt, the same one on a resubmit): a
    replay of the same request returns the first answer without charging again
    (``replayed=True``); the key with a different request raises :class:`IdempotencyConflict`;
    while the first request is still running, :class:`CheckoutInProgress` (safe to retry).

    Payment, when money is due: the saved card ``payment_method_id``, else ``card_token``, the
    single-use token of the gateway's card form (exchanged for a payment method before anything
    is written, saved as the default once the charge succeeds; a bad, used or expired token
    raises :class:`~prorata.payments.errors.CardTokenInvalid` with nothing written), else the account's default card
    (:class:`PaymentMethodRequired` if none). A corporate account (staff only) is invoiced with
    its payment terms instead. ``vat_number``, typed at checkout, is validated before anything is
    written and saved on the account with the order.

    Raises :class:`QuoteChanged` (nothing written) when the order differs from the quote shown,
    :class:`PaymentFailed` (``payment_declined`` / ``insufficient_funds``; nothing changed but the
    failed order and payment) when the card is refused, the policy's refusals, and
    :class:`OrderInProgress` while another order of the account awaits its payment.

    When the bank asks the customer to authenticate (3-D Secure), the order is placed and waits:
    the result's ``status`` is ``requires_action`` and ``action_url`` the gateway's page, which
    sends the customer back to :func:`order_return_url` (under ``site_url``, the address the
    customer is using, by default ``PRORATA_BASE_URL``); :func:`order_payment_confirm` then
    settles it. A replay of the request settles it the same way.
    """
    require_may_order(user, account, by_staff=by_staff)
    request = _checkout_request(
        account=account, idempotency_key=idempotency_key, expected=expected, items=items,
        payment_method_id=payment_method_id, card_token=card_token, vat_number=vat_number,
        by_staff=by_staff,
    )
    token = ""
    new_card: TokenizedCard | None = None
    if card_token:
        # A replay is answered before the single-use token is exchanged (it was, the first time;
        # without a new card, step 1 finds the replay under the lock, with the pending orders).
        stored = Order.objects.filter(account=account, idempotency_key=request.key).first()
        if stored is not None:
            return _replay_confirmed(_replay(stored, request.fingerprint), account, user)
        # Exchanged before anything is written: a bad token is refused with nothing saved.
        new_card = get_gateway().payment_method_create(token=card_token, at=now())
        token = new_card.token
    placed = _place(account=account, user=user, request=request,
                    payment_method_id=payment_method_id, token=token, by_staff=by_staff,
                    new_card=new_card)
    if placed.result is not None:
        return _replay_confirmed(placed.result, account, user)
    payment = placed.payment
    if payment is None:
        raise RuntimeError("An order placed without a result has a payment to send.")
    answer = _charge(payment=payment, token=placed.token, return_url=order_return_url(
        account_id=account.pk, order_id=placed.order.pk, site_url=site_url))
    return _settle(order_id=placed.order.pk, account_id=account.pk, answer=answer, actor=user)


def order_return_url(*, account_id: int, order_id: int, site_url: str = "") -> str:
    """Where the gateway sends the customer back after authenticating the payment of an order:
    the billing center's return page (:func:`order_payment_confirm`), absolute, under
    ``site_url`` (``"https://billing.example"``), by default ``PRORATA_BASE_URL``."""
    path = reverse("billing:order_return", args=[account_id, order_id])
    return f"{site_url.rstrip('/')}{path}" if site_url else absolute_url(path)


def order_payment_confirm(*, account: Account, order: Order, actor: User | None,
                          replayed: bool = False) -> CheckoutResult:
    """The customer is back from authenticating the payment of ``order`` (one of ``account``'s),
    or asks again for its outcome: the gateway is asked by the payment's idempotency key
    (outside any transaction) and the order is settled, exactly once whoever comes first (this
    page loaded twice, the API's replay, the reconciliation job: under the account's lock).

    - authenticated and charged: the order is applied (its new card saved as the default);
    - authentication failed or expired: :class:`PaymentFailed` (``authentication_failed``, the
      bank's message) and nothing is left of the order but the failed order and payment;
    - not answered yet (still ``requires_action``, or the gateway does not know): the result
      says ``requires_action`` with the same ``action_url``; the reconciliation job gives up on
      it after :data:`AUTHENTICATION_TIMEOUT`.

    An order that is settled already answers its outcome (a failed one: :class:`PaymentFailed`).
    """
    payment = order.payments.order_by("-id").first()
    if (order.status != OrderStatus.PLACED or payment is None
            or payment.status != PaymentStatus.REQUIRES_ACTION):
        result = _finished(order)
        return _result(order, replayed=True) if replayed else result
    answer = _look_up(get_gateway(), payment)
    if answer is None or answer.outcome in (ChargeOutcome.UNKNOWN, ChargeOutcome.REQUIRES_ACTION):
        return _result(order, replayed=replayed)
    result = _settle(order_id=order.pk, account_id=account.pk, answer=answer, actor=actor)
    return _result(result.order, replayed=True) if replayed else result


def _replay_confirmed(result: CheckoutResult, account: Account, user: User) -> CheckoutResult:
    """A replay of an order waiting for authentication asks the gateway what became of it."""
    if result.status != PaymentStatus.REQUIRES_ACTION:
        return result
    return order_payment_confirm(account=account, order=result.order, actor=user,
                                 replayed=True)


def _checkout_request(
    *, account: Account, idempotency_key: str, expected: Sequence[str] | str,
    items: Sequence[CheckoutItem] | None, payment_method_id: int | None,
    card_token: str | None, vat_number: str | None, by_staff: bool,
) -> _Request:
    """Validate the request (key, VAT number) and fingerprint it, before anything is written."""
    key = (idempotency_key or "").strip()
    if not key or len(key) > 200:
        raise ValidationError("An idempotency key of 1 to 200 characters is required.")
    expected_list = (expected,) if isinstance(expected, str) else tuple(expected)
    vat_number = typed_vat_number(account, vat_number)
    from_cart = items is None
    item_list = list(items) if items is not None else cart_items(account=account)
    card_label = str(card_token)[:200] if card_token else None
    # A cart checkout is fingerprinted as "the cart", not by what the cart holds: the first request
    # empties it, and its retry under the same key must be answered, not refused as different.
    request = fingerprint([
        "cart" if from_cart else [item.as_json() for item in item_list], list(expected_list),
        payment_method_id, card_label, vat_number, by_staff,
    ])
    return _Request(key=key, expected=expected_list, items=item_list, from_cart=from_cart,
                    vat_number=vat_number, fingerprint=request)


@dataclass(frozen=True)
class _Answer:
    """What the gateway said of a charge: its outcome, its reference and message, and for a
    definite failure that is not a card's refusal, the failure code to record."""

    outcome: ChargeOutcome
    reference: str = ""
    message: str = ""
    failure_code: str = ""
    action_url: str = ""


def _charge(*, payment: Payment, token: str, return_url: str = "") -> _Answer:
    """Step 2, outside any transaction: the gateway charge under the payment's idempotency key.

    A gateway that refuses the request itself (a :class:`ProrataError`: the key reused, the amount
    or card refused before any money moved) is a definite failure, not an unknown outcome. Any
    other exception (a timeout, a lost connection) is unknown: the gateway is asked at once, by
    the same key, what became of the charge (:func:`_look_up`); only when it cannot say does the
    order wait for :func:`payments_reconcile_due`. The customer is present: a bank that asks
    them to authenticate answers ``requires_action`` with its page, which returns to
    ``return_url``; the charge's description is in the customer's language (the request's), as
    that page shows it."""
    gateway = get_gateway()
    try:
        charge = gateway.charge(
            token=token, amount=Money(payment.amount, payment.currency),
            idempotency_key=payment.idempotency_key,
            description=gettext("Order %(number)s") % {"number": payment.order_id},
            off_session=False, return_url=return_url,
        )
        faults.point("after_gateway_call")
    except ProrataError as refused:
        logger.warning("Gateway refused payment %s: %s (%s)", payment.pk, refused.message,
                       refused.code)
        return _Answer(ChargeOutcome.DECLINED, "", PAYMENT_REFUSED, "payment_refused")
    except Exception:  # the gateway did not answer: maybe charged; never charge again
        logger.exception("Gateway charge for payment %s did not answer", payment.pk)
        answer = _Answer(ChargeOutcome.UNKNOWN, "", PAYMENT_UNCONFIRMED)
    else:
        answer = _Answer(charge.outcome, charge.reference, charge.message,
                         action_url=charge.action_url)
    if answer.outcome == ChargeOutcome.UNKNOWN:
        found = _look_up(gateway, payment)
        if found is not None and found.outcome != ChargeOutcome.UNKNOWN:
            return found
    return answer


def _look_up(gateway: Gateway, payment: Payment) -> _Answer | None:
    """What the gateway says of ``payment`` (by its idempotency key): ``None`` when it never saw
    the key; an ``UNKNOWN`` answer when it does not know yet *or did not answer* (a lookup that
    fails proves nothing: the payment may have been charged, so it is never taken for "not
    received"); else its definite answer."""
    try:
        found = gateway.lookup(idempotency_key=payment.idempotency_key)
    except Exception:
        logger.exception("Gateway lookup for payment %s did not answer", payment.pk)
        return _Answer(ChargeOutcome.UNKNOWN, "", PAYMENT_UNCONFIRMED)
    if found is None:
        return None
    return _Answer(found.outcome, found.reference, found.message, action_url=found.action_url)


def _replay(order: Order, request: str) -> CheckoutResult:
    """The stored answer to the first request made with this order's key."""
    if order.request_fingerprint != request:
        raise IdempotencyConflict(
            "This idempotency key was already used for a different order. Send the same request "
            "again to get its result, or use a new key for a new order.",
            order=order.pk,
        )
    if order.status == OrderStatus.FAILED:
        raise PaymentFailed(order.failure_message, code=order.failure_code, order=order.pk)
    if order.status == OrderStatus.PLACED:
        payment = order.payments.order_by("-id").first()
        if payment is None or payment.status == PaymentStatus.PENDING:
            raise CheckoutInProgress(
                "This order is still being processed. It is safe to send the same request again "
                "in a moment.",
                order=order.pk,
            )
    return _result(order, replayed=True)


def _result(
    order: Order, *, replayed: bool = False, message: str = "",
    documents: list[Document] | None = None, payments: list[Payment] | None = None,
) -> CheckoutResult:
    """The answer to a checkout; ``documents`` and ``payments`` when the caller has them at hand
    (else they are read)."""
    if documents is None:
        documents = list(order.documents.filter(number__isnull=False).order_by("id"))
    if payments is None:
        payments = list(order.payments.all())
    invoice = next((doc for doc in documents if doc.kind == DocumentKind.INVOICE), None)
    charged = sum(
        payment.amount for payment in payments if payment.status == PaymentStatus.SUCCEEDED
    )
    status, action_url = order.status, ""
    if order.status == OrderStatus.PLACED:
        waiting = next((payment for payment in payments
                        if payment.status == PaymentStatus.REQUIRES_ACTION), None)
        if waiting is not None:
            status, action_url = PaymentStatus.REQUIRES_ACTION.value, waiting.action_url
            message = message or OUTCOME_MESSAGES[ChargeOutcome.REQUIRES_ACTION]
        message = message or PAYMENT_UNCONFIRMED
    return CheckoutResult(
        order=order, status=status, invoice=invoice, action_url=action_url,
        credit_notes=tuple(doc for doc in documents if doc.kind == DocumentKind.CREDIT_NOTE),
        amount_charged=Money(charged, order.currency),
        credit_created=Money(order.credit_created, order.currency),
        replayed=replayed, message=message,
    )


@retry_transient
def _place(
    *,
    account: Account,
    user: User,
    request: _Request,
    payment_method_id: int | None,
    token: str,
    by_staff: bool,
    new_card: TokenizedCard | None = None,
) -> _Placed:
    """Step 1 (and step 3 too when nothing is charged): one transaction. ``new_card``, the payment
    method made from the card typed at checkout, is kept with the order until it has paid."""
    with transaction.atomic():
        account = lock_account(account.pk)
        faults.point("after_lock")
        # The same key's first request may have committed while we waited for the lock; and while
        # an order of the account awaits its payment, no other one is placed. The balance and
        # the card to charge come in the same read (one statement on PostgreSQL).
        reads = checkout_reads(account_id=account.pk, key=request.key,
                               payment_method_id=None if token else payment_method_id)
        stored = next((pk for pk, key in reads.busy if key == request.key), None)
        if stored is not None:
            order = Order.objects.get(pk=stored)
            return _Placed(order=order, result=_replay(order, request.fingerprint))
        subscriptions, quote = _price_locked(account=account, request=request, by_staff=by_staff,
                                             balances=reads.balances)
        # Fewer licenses than assigned: the members who lose theirs must be chosen (issue 13).
        licenses_check_order(subscriptions=subscriptions, quantities={
            q.item.product_code: q.item.quantity for q in quote.items})
        if reads.busy:
            raise OrderInProgress(
                "Another order of this account is waiting for its payment to be confirmed; try "
                "again in a moment.",
            )
        _remember_account_details(account=account, user=user, currency=quote.currency,
                                  vat_number=request.vat_number)
        due = quote.totals.amount_due.amount
        charge_card = due > 0 and not account.is_corporate
        method = _payment_method(reads.card, payment_method_id, token) if charge_card else None
        order = _order_new(account=account, user=user, request=request, quote=quote,
                           by_staff=by_staff, new_card=new_card if method is not None else None)
        if method is None:
            order.save(force_insert=True)
            documents = _apply(order=order, account=account, subscriptions=subscriptions,
                               payment=None, actor=user)
            return _Placed(order=order, result=_result(order, documents=documents, payments=[]))
        saved, token = method
        payment = Payment(
            account=account, method=PaymentMethodKind.CARD, payment_method=saved,
            method_label=str(saved) if saved is not None else "Card",
            currency=order.currency, amount=due, status=PaymentStatus.PENDING,
            attempt=1, created_at=order.created_at,
        )
        # The order reserves its subscriptions (their versions move with it): a quote made
        # before it is stale from now on.
        order_place(order=order, payment=payment, key_prefix="prorata:order:", key_suffix=":1",
                    reserve=[row.pk for row in subscriptions.values()])
        faults.point("after_payment_row")
    return _Placed(order=order, payment=payment, token=token)


def _price_locked(
    *, account: Account, request: _Request, by_staff: bool, balances: dict[str, int]
) -> tuple[dict[str, Subscription], CheckoutQuote]:
    """Lock the items' subscriptions and price the order again through the one engine, with the
    account's stored ``balances`` (by currency, minor units, read under the account's lock);
    refuse (:class:`QuoteChanged`, nothing written) when it is not what the customer saw. In the
    caller's transaction, under the account's lock."""
    locked = lock_subscriptions(
        account_id=account.pk, product_codes=[item.product_code for item in request.items]
    )
    subscriptions = {row.product.code: row for row in locked}
    states = {code: state_of(row) for code, row in subscriptions.items()}
    at = now()
    tax = account_tax(account, at, request.vat_number)
    currency = account_currency(account, next(iter(states.values()), None))
    # The quotes' catalog (at most a second old in production, read afresh with the movable
    # clock): the order must equal the quote shown anyway, so a price changed within that second
    # is charged as the customer saw it, and the four catalog reads leave the locked transaction.
    arguments = {"account": account, "items": request.items, "subscriptions": states, "at": at,
                 "tax": tax, "credit": spendable_credit(balances.get(currency, 0), currency),
                 "by_staff": by_staff}
    try:
        quote = price_items(catalog=quote_catalog(), **arguments)
    except NotInCatalog:  # perhaps just added to the catalog: read it again before refusing
        quote = price_items(catalog=quote_catalog(fresh=True), **arguments)
    if quote.fingerprints != request.expected:
        raise QuoteChanged(
            "The order summary changed since you saw it: review the new summary and place "
            "the order again.",
            quote=quote,
        )
    return subscriptions, quote


def _order_new(
    *, account: Account, user: User, request: _Request, quote: CheckoutQuote, by_staff: bool,
    new_card: TokenizedCard | None = None,
) -> Order:
    """The order ``placed`` (not saved yet) with the quote's snapshot and the versions it was
    priced at (and the new card that is to pay it: saved on the account once it has)."""
    kinds = {quote_item.kind.value for quote_item in quote.items}
    totals = quote.totals
    return Order(
        account=account, kind=kinds.pop() if len(kinds) == 1 else OrderKindChoice.MIXED,
        status=OrderStatus.PLACED, currency=quote.currency,
        subtotal=totals.subtotal.amount, tax=totals.tax.amount, total=totals.total.amount,
        credit_applied=totals.credit_applied.amount, amount_due=totals.amount_due.amount,
        credit_created=totals.credit_created.amount,
        snapshot=quote.snapshot(from_cart=request.from_cart).to_json(),
        expected_versions={
            str(item.subscription_id): item.subscription_version
            for item in quote.items if item.subscription_id is not None
        },
        idempotency_key=request.key, request_fingerprint=request.fingerprint, placed_by=user,
        by_staff=by_staff, created_at=quote.at,
        new_card=asdict(new_card) if new_card is not None else None,
    )


def _remember_account_details(
    *, account: Account, user: User, currency: str, vat_number: str | None
) -> None:
    """The first purchase fixes the account's currency; a VAT number typed at checkout is kept."""
    fields = []
    before = {"currency": account.currency, "vat_number": account.vat_number}
    if not account.currency:
        account.currency = currency
        fields.append("currency")
    if vat_number and vat_number != account.vat_number:
        account.vat_number = vat_number
        fields.append("vat_number")
    if fields:
        account.save(update_fields=fields)
        audit_record(actor=user, action="account.billing_details", account=account, obj=account,
                     before={name: before[name] for name in fields},
                     after={name: getattr(account, name) for name in fields})


def _payment_method(
    card: PaymentMethod | None, payment_method_id: int | None, token: str
) -> tuple[PaymentMethod | None, str]:
    """What pays the order: the card typed at checkout (``token``), else ``card``, the saved one
    read under the account lock (``payment_method_id``'s, else the default); refused when there
    is none."""
    if token:
        return None, token
    if payment_method_id is not None:
        if card is None:
            from prorata.payments.errors import PaymentMethodNotFound

            raise PaymentMethodNotFound(
                f"There is no saved card {payment_method_id} on this account; choose one of the "
                "account's saved cards, or add a new one.",
                payment_method_id=payment_method_id,
            )
        return card, card.token
    if card is None:
        raise PaymentMethodRequired(
            "This order has an amount to pay: enter your card details.",
        )
    return card, card.token


@retry_transient
def _finish(
    *, order_id: int, account_id: int, answer: _Answer, actor: User | None,
    notify_failure: bool = False,
) -> CheckoutResult:
    """Step 3: apply the paid order, or fail it, or leave it placed (unknown outcome); once."""
    with transaction.atomic():
        # The account locked, with who hears of the order (webhook endpoints, billing contacts).
        opened = lock_account_for_order(account_id)
        account = opened.account
        # The order with its payment (an order has one card payment: its key ends in ":1") and
        # the account's balance in the order's currency, read under the lock (one query).
        payment = (Payment.objects.select_related("order").filter(order_id=order_id)
                   .annotate(stored_balance=Subquery(AccountBalance.objects.filter(
                       account_id=OuterRef("account_id"), currency=OuterRef("order__currency"))
                       .values("balance")[:1]))
                   .order_by("-id").first())
        if payment is None or payment.order is None:
            raise RuntimeError(f"Order {order_id} is placed without a payment.")
        order = payment.order
        opened = replace(opened, credit=spendable_credit(payment.stored_balance or 0,
                                                          order.currency))
        if order.status != OrderStatus.PLACED:  # reconciled meanwhile: the first answer stands
            return _finished(order)
        at = now()
        if answer.outcome == ChargeOutcome.SUCCEEDED:
            applied = _finish_paid(order=order, account=account, payment=payment, answer=answer,
                                   at=at, actor=actor, opened=opened)
            if applied is not None:
                return applied
        elif answer.outcome == ChargeOutcome.UNKNOWN:
            if payment.status != PaymentStatus.UNKNOWN:
                payment.status = PaymentStatus.UNKNOWN
                payment.message = answer.message
                payment.save(update_fields=["status", "message"])
            return _result(order, message=PAYMENT_UNCONFIRMED)
        elif answer.outcome == ChargeOutcome.REQUIRES_ACTION and (
                answer.action_url or payment.action_url):
            # The order waits (placed, nothing applied) while the customer authenticates.
            payment.status = PaymentStatus.REQUIRES_ACTION
            payment.reference = answer.reference[:255]
            payment.action_url = (answer.action_url or payment.action_url)[:1000]
            payment.message = answer.message
            payment.save(update_fields=["status", "reference", "action_url", "message"])
            return _result(order, payments=[payment])
        else:
            if payment.status == PaymentStatus.REQUIRES_ACTION and not answer.failure_code and (
                    answer.outcome == ChargeOutcome.DECLINED):
                answer = replace(answer, failure_code="authentication_failed")
            elif answer.outcome == ChargeOutcome.REQUIRES_ACTION:  # and no page to do it on
                answer = replace(answer, failure_code="authentication_failed",
                                 message=AUTHENTICATION_UNAVAILABLE)
            _fail(order=order, account=account, payment=payment, answer=answer, at=at,
                  notify=notify_failure)
    return _finished(order)


def _finish_paid(
    *, order: Order, account: Account, payment: Payment, answer: _Answer, at: datetime,
    actor: User | None, opened: OrderAccount | None = None,
) -> CheckoutResult | None:
    """The card was charged: apply the order with its payment (under the account's lock), unless
    its subscriptions moved since it was priced (the billing run renewed one while the payment
    was unknown, say): then it is set aside, not applied blind (:func:`_set_aside`), and ``None``
    is returned (the caller reports the failed order and refunds it)."""
    payment.status = PaymentStatus.SUCCEEDED
    payment.reference = answer.reference[:255]
    payment.message = answer.message
    payment.completed_at = at
    locked = {row.product.code: row for row in lock_subscriptions(
        account_id=account.pk, product_codes=order.summary.products)}
    moved = _moved_since_priced(order, locked)
    if moved:
        _set_aside(order=order, account=account, payment=payment, at=at, moved=moved)
        return None
    documents = _apply(order=order, account=account, subscriptions=locked, payment=payment,
                       actor=actor, opened=opened)
    return _result(order, documents=documents, payments=[payment])


def _moved_since_priced(order: Order, locked: dict[str, Subscription]) -> list[str]:
    """The products whose subscription is no longer the one the order was priced against: created
    since (a first purchase), or of another version (placing the order added one) or period."""
    moved = []
    for item in order.summary.items:
        subscription = locked.get(item.product)
        if item.subscription_id is None or item.subscription_version is None:
            if subscription is not None:
                moved.append(item.product)
            continue
        credit = next((line for line in item.lines if line.kind is LineKind.CREDIT), None)
        if (subscription is None or subscription.pk != item.subscription_id
                or subscription.version != item.subscription_version + 1
                or (credit is not None and subscription.period_end != credit.period.end)):
            moved.append(item.product)
    return moved


def _set_aside(
    *, order: Order, account: Account, payment: Payment, at: datetime, moved: list[str]
) -> None:
    """A paid order that cannot be applied as priced: the payment is recorded (the gateway has
    the money: it is account credit until the refund takes it back, :func:`_refund_set_aside`),
    the order fails with ``order_outdated`` and nothing else changes."""
    payment.save(update_fields=["status", "reference", "message", "completed_at"])
    ledger_append(account=account, currency=payment.currency, at=at, movements=[
        Movement(LedgerKind.PAYMENT, payment.amount, payment=payment,
                 memo=f"{payment.method_label} · order {order.pk} (not applied: refunded)"),
    ])
    order.status = OrderStatus.FAILED
    order.failure_code = "order_outdated"
    order.failure_message = ORDER_OUTDATED
    order.completed_at = at
    order.save(update_fields=["status", "failure_code", "failure_message", "completed_at"])
    audit_record(actor=None, action="order.not_applied", account=account, obj=order,
                 after={"reason": "order_outdated", "products": moved,
                        "payment": payment.pk, "amount": payment.amount,
                        "currency": payment.currency})


def _refund_set_aside(order_id: int) -> None:
    """Give back the payment of an order set aside by :func:`_set_aside` (outside any
    transaction: the gateway is called), and tell the customer. Idempotent: a payment already
    refunded (or being refunded) is left alone. If the refund fails, the money stays as account
    credit (used on the next invoice, or refunded by support) and the e-mail says so."""
    from prorata.billing.models import Refund
    from prorata.billing.services import payment_refund

    order = Order.objects.select_related("account").get(pk=order_id)
    payment = order.payments.filter(status=PaymentStatus.SUCCEEDED).first()
    if payment is None or Refund.objects.filter(payment=payment).exists():
        return
    refunded = True
    try:
        payment_refund(payment=payment, amount=Money(payment.amount, payment.currency),
                       actor=None,  # type: ignore[arg-type]  # the system, audited as such
                       memo=f"Order {order.pk} not applied")
    except Exception:
        logger.exception("Could not refund payment %s of order %s", payment.pk, order.pk)
        refunded = False
    with transaction.atomic():
        account = lock_account(order.account_id)
        # Kept as credit, the payment first pays what the account still owes, in the open.
        settled = ([] if refunded else credit_settle_open_invoices(
            account=account, currency=order.currency, at=now()))
        balance = credit_balance(account, order.currency)
        _notify(order=order, account=account, template="order_not_applied",
                attachments=[], context={
                    "amount": money_json(payment.amount, payment.currency),
                    "refunded": refunded, "items": _email_items(order),
                    "balance": money_json(balance.amount, balance.currency),
                    "applied_to": settlements_json(settled),
                    "url": f"/billing/{order.account_id}/",
                })


def _settle(
    *, order_id: int, account_id: int, answer: _Answer, actor: User | None,
    notify_failure: bool = False,
) -> CheckoutResult:
    """:func:`_finish`, then the new card of a paid order saved (:func:`_save_card`), or the
    refund of an order that could not be applied as priced."""
    try:
        result = _finish(order_id=order_id, account_id=account_id, answer=answer, actor=actor,
                         notify_failure=notify_failure)
        faults.point("after_payment_commit")
    except PaymentFailed as failed:
        if failed.code == "order_outdated":
            _refund_set_aside(order_id)
        raise
    if result.status == OrderStatus.PAID and result.order.new_card:
        _save_card(order_id=order_id, user=actor)
    return result


def _fail(
    *, order: Order, account: Account, payment: Payment, answer: _Answer, at: datetime,
    notify: bool,
) -> None:
    """The card was refused (or the payment never reached the gateway): the order and its
    payment fail, nothing else changes."""
    code = answer.failure_code or _FAILURE_CODES.get(answer.outcome, "payment_declined")
    payment.status = PaymentStatus.FAILED
    payment.reference = answer.reference[:255]
    payment.failure_code = code
    payment.message = answer.message
    payment.completed_at = at
    payment.save(update_fields=["status", "reference", "failure_code", "message",
                                "completed_at"])
    order.status = OrderStatus.FAILED
    order.failure_code = code
    order.failure_message = answer.message
    order.completed_at = at
    order.save(update_fields=["status", "failure_code", "failure_message", "completed_at"])
    # Nothing was applied: the subscriptions are as they were quoted, so a quote made before
    # this attempt is valid again (no other order could be placed meanwhile).
    for subscription_id, version in order.expected_versions.items():
        Subscription.objects.filter(pk=int(subscription_id), version=version + 1).update(
            version=version
        )
    if notify:
        _notify(order=order, account=account, template="payment_failed", context={
            "amount_due": money_json(order.amount_due, order.currency), "reason": answer.message,
            "items": _email_items(order),
        }, attachments=[])


def _finished(order: Order) -> CheckoutResult:
    if order.status == OrderStatus.FAILED:
        raise PaymentFailed(order.failure_message, code=order.failure_code, order=order.pk)
    return _result(order)


def _save_card(*, order_id: int, user: User | None) -> None:
    """Keep the new card that paid order ``order_id`` as the account's default (only the gateway
    had it so far), once: the payment then names the saved card (under the account's lock, so
    that a double return saves one card)."""
    from prorata.payments.services import payment_method_save

    try:
        with transaction.atomic():
            order = Order.objects.get(pk=order_id)
            if not order.new_card:
                return
            account = lock_account(order.account_id)
            payment = (Payment.objects.filter(order_id=order_id, status=PaymentStatus.SUCCEEDED)
                       .order_by("-id").first())
            if payment is None or payment.payment_method_id is not None:
                return
            method = payment_method_save(account=account, card=TokenizedCard(**order.new_card),
                                         make_default=True, actor=user)
            Payment.objects.filter(pk=payment.pk).update(payment_method=method,
                                                         method_label=str(method))
    except Exception:  # the order is paid; failing to save the card must not undo that
        logger.exception("Could not save the new card of order %s", order_id)


# --- applying a paid (or fully credited, or invoiced) order -----------------------------------------

@dataclass(frozen=True)
class _Drafts:
    """An order's documents as issued: the credit notes (one per invoice whose unused time they
    credit, by invoice id) and the invoice of the new periods."""

    credit_notes: list[Document]
    invoice: Document


def _apply(
    *,
    order: Order,
    account: Account,
    subscriptions: dict[str, Subscription],
    payment: Payment | None,
    actor: User | None,
    opened: OrderAccount | None = None,
) -> list[Document]:
    """Issue the order's documents and make its change real, in the caller's transaction (under
    the account and subscription locks). Uses the order's snapshot: exactly what was shown.
    ``payment`` (succeeded, not saved yet) is saved with its invoice. ``opened``: what the
    account's lock read with it (webhook endpoints, e-mail readers, credit), else read here.
    Returns the documents."""
    at = now()
    # The order's webhook events (documents, subscriptions) are written together, at the end.
    webhooks = WebhookBatch(subscribed=opened.subscribed) if opened else WebhookBatch()
    subscriptions, before = _prepare_subscriptions(
        order=order, account=account, subscriptions=subscriptions, at=at, actor=actor,
        webhooks=webhooks,
    )
    drafts = _issue_documents(order=order, account=account, subscriptions=subscriptions,
                              payment=payment, at=at, webhooks=webhooks,
                              credit=opened.credit if opened else None)
    credit_notes, invoice = drafts.credit_notes, drafts.invoice
    if payment is not None:  # saved with the ledger's rows (one statement on PostgreSQL)
        payment.invoice = invoice
    _post_ledger(account=account, currency=order.currency, at=at, drafts=drafts, payment=payment)
    # Credit left by the order first pays what the account still owes, in the open.
    settled = (credit_settle_open_invoices(account=account, currency=order.currency, at=at,
                                           credit_note=credit_notes[0] if credit_notes else None)
               if order.credit_created else [])
    _commit_subscriptions(order=order, subscriptions=subscriptions, before=before,
                          invoice=invoice, at=at, actor=actor, webhooks=webhooks)
    licenses_apply_order(order=order, subscriptions=subscriptions.values(), actor=actor)
    webhooks.save()
    _complete_order(order=order, account=account, drafts=drafts, at=at, actor=actor)
    _send_receipt(order=order, account=account, invoice=invoice, credit_notes=credit_notes,
                  settled=settled, recipients=opened.recipients if opened else None)
    return [*credit_notes, invoice]


def _issue_documents(
    *, order: Order, account: Account, subscriptions: dict[str, Subscription],
    payment: Payment | None, at: datetime, webhooks: WebhookBatch, credit: Money | None = None,
) -> _Drafts:
    """Issue the credit notes for the unused time of each subscription (grouped by the invoice
    they correct) and the invoice of the new periods, with the credit balance (the new credit
    notes included) applied first (S8) and ``payment`` for the rest: numbered and saved together
    (:func:`~prorata.billing.services.documents_issue`). A credit line of 0.00 (and 0.00 tax) is
    not issued: a credit note of nothing is no document (it stays in the order's summary)."""
    summary = order.summary
    currency = order.currency
    credits: dict[int, list[DraftLine]] = defaultdict(list)
    invoices: dict[int, Document] = {}
    charges: list[DraftLine] = []
    for item in summary.items:
        subscription = subscriptions.get(item.product)
        for line in item.lines:
            if line.kind is LineKind.CREDIT:
                if subscription is None or subscription.invoice_id is None:
                    raise ValidationError("A credit needs the invoice of the period it corrects.")
                if not (line.amount.amount or line.tax.amount):
                    continue  # less than half a cent of unused time: nothing to issue
                credits[subscription.invoice_id].append(DraftLine(line, subscription.pk))
                invoices[subscription.invoice_id] = subscription.invoice
            else:
                charges.append(DraftLine(line, subscription.pk if subscription else None))
    credit_notes = [
        DocumentDraft(document_build(
            account_id=account.pk, kind=DocumentKind.CREDIT_NOTE.value, lines=lines, at=at,
            tax=summary.tax, currency=currency, order_id=order.pk, refers_to_id=invoice_id,
        ), account=account, order=order, refers_to=invoices[invoice_id])
        for invoice_id, lines in sorted(credits.items())
    ]
    charge_total = sum(d.line.amount.amount + d.line.tax.amount for d in charges)
    if credit is None:
        credit = credit_balance(account, currency)
    available = (credit.amount
                 - sum(note.rows.head.total for note in credit_notes))
    credit_applied = max(0, min(charge_total, available))
    paid = payment.amount if payment is not None else 0
    if paid > charge_total - credit_applied:
        logger.error("Order %s: paid %s for %s due", order.pk, paid, charge_total - credit_applied)
        paid = charge_total - credit_applied
    rows = document_build(
        account_id=account.pk, kind=DocumentKind.INVOICE.value, lines=charges, at=at,
        tax=summary.tax, currency=currency, order_id=order.pk, credit_applied=credit_applied,
        amount_paid=paid,
        due_at=at + timedelta(days=account.payment_terms_days) if account.is_corporate else None,
    )
    invoice = rows.head
    if invoice.amount_due + invoice.amount_paid != order.amount_due:
        logger.error("Order %s: the invoice leaves %s due, the quote said %s", order.pk,
                     invoice.amount_due + invoice.amount_paid, order.amount_due)
    *notes, issued = documents_issue(
        [*credit_notes, DocumentDraft(rows, account=account, order=order)], webhooks=webhooks)
    return _Drafts(credit_notes=notes, invoice=issued)


def _post_ledger(
    *, account: Account, currency: str, at: datetime, drafts: _Drafts, payment: Payment | None
) -> None:
    """The ledger rows of the numbered documents and of the payment."""
    invoice = drafts.invoice
    movements = [Movement(LedgerKind.CREDIT_NOTE, -note.total, document=note,
                          memo=ledger_memo(LedgerKind.CREDIT_NOTE.value, number=note.number))
                 for note in drafts.credit_notes]
    movements.append(Movement(LedgerKind.INVOICE, -invoice.total, document=invoice,
                              memo=ledger_memo(LedgerKind.INVOICE.value, number=invoice.number)))
    if payment is not None:
        movements.append(Movement(LedgerKind.PAYMENT, payment.amount, document=invoice,
                                  payment=payment, memo=ledger_memo(
                                      LedgerKind.PAYMENT.value, number=invoice.number,
                                      label=payment.method_label)))
    ledger_append(account=account, currency=currency, at=at, movements=movements,
                  payment=payment, payment_fields=_PAYMENT_FIELDS if payment is not None else ())


#: What applying an order changes on its (succeeded) payment.
_PAYMENT_FIELDS = ("status", "reference", "message", "completed_at", "invoice")


def _complete_order(
    *, order: Order, account: Account, drafts: _Drafts, at: datetime, actor: User | None
) -> None:
    """The order paid (or invoiced: corporate terms), its items out of the cart, the audit entry."""
    summary = order.summary
    invoice = drafts.invoice
    order.status = OrderStatus.PAID if invoice.amount_due == 0 else OrderStatus.INVOICED
    order.invoice = invoice
    order.completed_at = at
    # The cart's items, the order and its audit entry: one statement on PostgreSQL.
    order_complete(order=order, products=summary.products, audit=audit_entry(
        actor=actor, action="staff.order.place" if order.by_staff else "order.place",
        account=account, obj=order,
        after={"kind": order.kind, "status": order.status, "invoice": invoice.number,
               "credit_notes": [note.number for note in drafts.credit_notes],
               "amount_due": order.amount_due, "credit_created": order.credit_created,
               "currency": order.currency,
               "items": [item.configuration.to_json() for item in summary.items],
               "by_staff": order.by_staff},
    ))


def _prepare_subscriptions(
    *, order: Order, account: Account, subscriptions: dict[str, Subscription], at: datetime,
    actor: User | None, webhooks: WebhookBatch,
) -> tuple[dict[str, Subscription], dict[str, dict[str, Any] | None]]:
    """Give each item's subscription its new configuration and period (a first purchase's is
    created here, so that the invoice lines can name it); saved by :func:`_commit_subscriptions`
    once the invoice exists. Returns them by product, and what each was before."""
    summary = order.summary
    # The locked subscriptions came with their plan and cycle: only other ones are read.
    plans = {row.plan.code: row.plan for row in subscriptions.values()}
    cycles = {row.cycle.code: row.cycle for row in subscriptions.values()}
    wanted_plans = {item.configuration.plan for item in summary.items} - set(plans)
    wanted_cycles = {item.configuration.cycle for item in summary.items} - set(cycles)
    if wanted_plans:
        plans.update({row.code: row for row in Plan.objects.filter(code__in=wanted_plans)})
    if wanted_cycles:
        cycles.update({row.code: row for row in BillingCycle.objects.filter(
            code__in=wanted_cycles)})
    prepared = dict(subscriptions)
    before: dict[str, dict[str, Any] | None] = {}
    for item in summary.items:
        config = item.configuration
        plan = plans[config.plan]
        subscription = prepared.get(item.product)
        before[item.product] = (subscription_describe(subscription)
                                if subscription is not None else None)
        if subscription is None:
            subscription = Subscription(account=account, product_id=plan.product_id,
                                        created_at=at)
        subscription.plan = plan
        subscription.cycle = cycles[config.cycle]
        subscription.quantity = config.quantity
        subscription.currency = order.currency
        subscription.unit_amount = config.unit_amount
        # A change keeps the customer's renewal choice as it stands now (Cancel renewal stays
        # cancelled, S2); a purchase or a reactivation renews.
        if item.kind is not OrderKind.CHANGE:
            subscription.auto_renew = True
        subscription.anchor = summary.at
        subscription.period_start = item.period.start
        subscription.period_end = item.period.end
        subscription.invoiced_amount = item.charge.amount.amount
        if subscription.pk is None:
            # Inserted now, so that the invoice lines can name it; its invoice is set on commit.
            subscription_transition(subscription=subscription, to=Status.ACTIVE,
                                    event=_EVENTS[item.kind], at=at, actor=actor, order=order,
                                    webhooks=webhooks)
        prepared[item.product] = subscription
    return prepared, before


#: The history entry of each kind of order item (the lifecycle's events).
_EVENTS = {OrderKind.PURCHASE: Event.PURCHASED, OrderKind.CHANGE: Event.CHANGED,
           OrderKind.REACTIVATION: Event.REACTIVATED}


def _commit_subscriptions(
    *, order: Order, subscriptions: dict[str, Subscription],
    before: dict[str, dict[str, Any] | None], invoice: Document, at: datetime,
    actor: User | None, webhooks: WebhookBatch,
) -> None:
    """Save the prepared subscriptions with the invoice of their new period: an existing one
    moves to ``active`` (a change, a reactivation, a purchase after a free trial) through the
    lifecycle's one writer, with its history entry; a new one was inserted by
    :func:`_prepare_subscriptions` and only gets its invoice."""
    for item in order.summary.items:
        subscription = subscriptions[item.product]
        subscription.invoice = invoice
        previous = before[item.product]
        if previous is None:
            subscription.save(update_fields=["invoice"])
            continue
        subscription_transition(
            subscription=subscription, to=Status.ACTIVE, event=_EVENTS[item.kind], at=at,
            actor=actor, order=order, before=previous, also=_ORDER_FIELDS, webhooks=webhooks,
        )


#: What applying an order changes on an existing subscription, besides its status and version.
_ORDER_FIELDS = ("plan", "cycle", "quantity", "currency", "unit_amount", "auto_renew", "anchor",
                 "period_start", "period_end", "invoiced_amount", "invoice")


# --- e-mails --------------------------------------------------------------------------------------


def _email_items(order: Order) -> list[dict[str, Any]]:
    items = []
    for item in order.summary.items:
        config, previous = item.configuration, item.previous
        items.append({
            "product": item.product_name, "plan": config.plan_name,
            "licenses": config.quantity, "cycle": config.cycle,
            "previous": None if previous is None else {
                "plan": previous.plan_name, "licenses": previous.quantity,
                "cycle": previous.cycle,
            },
        })
    return items


def _receipt_items(order: Order) -> list[ReceiptItem]:
    """Each product of a paid order as its receipt lists it: the new configuration (and the one
    before a change), the period the order opened, and its next billing date (none when its
    renewal is cancelled)."""
    items = []
    for item in order.summary.items:
        config, previous = item.configuration, item.previous
        items.append(ReceiptItem(
            product=item.product_name, plan=config.plan_name, licenses=config.quantity,
            cycle=config.cycle, period=item.period,
            next_billing_date=item.next_billing_date if item.renews else None,
            previous=None if previous is None else ReceiptConfiguration(
                plan=previous.plan_name, licenses=previous.quantity, cycle=previous.cycle)))
    return items


def _notify(
    *, order: Order, account: Account, template: str, context: dict[str, Any],
    attachments: list[dict[str, Any]], recipients: list[Recipient] | None = None,
) -> None:
    notify_billing_contacts(account=account, template=template, context=context,
                            attachments=attachments, dedupe_key=f"order:{order.pk}:{template}",
                            recipients=recipients)


def _send_receipt(
    *, order: Order, account: Account, invoice: Document, credit_notes: list[Document],
    settled: list[Settlement], recipients: list[Recipient] | None = None,
) -> None:
    """The confirmation e-mail with its receipts (S6, S12). An invoice left open (corporate terms)
    is not a receipt yet: its receipt goes out when the transfer is recorded. ``settled``: the
    open invoices the order's credit paid (:mod:`prorata.billing.credit`), which the credit
    e-mail names."""
    if invoice.amount_due:
        return
    first = order.summary.items[0]
    attachments = [{"kind": "invoice", "id": invoice.pk}] + [
        {"kind": "credit_note", "id": note.pk} for note in credit_notes
    ]
    licenses = license_receipt_context(order=order, account=account)
    items = _receipt_items(order)
    common = {"items": [item.to_json() for item in items],
              "next_billing_date": format_instant(first.next_billing_date), **licenses}
    if order.credit_created:
        balance = credit_balance(account, order.currency)
        _notify(order=order, account=account, template="credit_created", attachments=attachments,
                recipients=recipients,
                context={**common, "credit": money_json(order.credit_created, order.currency),
                         "balance": money_json(balance.amount, balance.currency),
                         "applied_to": settlements_json(settled),
                         "document_number": credit_notes[0].number if credit_notes else
                         invoice.number,
                         # the billing activity (the credit note and the balance), as the
                         # e-mail's button says
                         "url": reverse("billing:transactions", args=[account.pk])})
        return
    kind = order.kind if order.kind in {"purchase", "change", "renewal"} else (
        "purchase" if order.kind == OrderKind.REACTIVATION.value else "change")
    receipt_enqueue(account=account, document=invoice, credit_notes=credit_notes,
                    recipients=recipients, context=receipt_context(
        kind=kind, number=invoice.number or "", currency=invoice.currency,
        amount_paid=invoice.amount_paid, total=invoice.total,
        credit_applied=invoice.credit_applied, items=items,
        period=first.period, next_billing_date=first.next_billing_date) | licenses)


# --- reconciliation (DESIGN §8) ---------------------------------------------------------------------

#: How long a payment may stay pending (the checkout between its two transactions, the gateway
#: call included) or unknown to the gateway before the reconciliation job acts on it: longer than
#: any gateway timeout, so that a charge still in flight is never declared "not received".
RECONCILE_AFTER = timedelta(minutes=2)
#: How long Prorata waits for a customer to authenticate a payment (3-D Secure) before the
#: reconciliation job gives up on the order (failed: ``authentication_abandoned``, nothing
#: charged), so that the account can order again. Longer than a gateway's own expiry of the
#: authentication (the sandbox's: 10 minutes), after which its ``lookup`` answers declined.
AUTHENTICATION_TIMEOUT = timedelta(minutes=30)


def payment_reconcile(
    *, older_than: timedelta = RECONCILE_AFTER, payment_ids: Sequence[int] | None = None,
    at: datetime | None = None,
) -> list[CheckoutResult]:
    """Settle card payments of orders whose outcome is unknown, or that stayed pending longer
    than ``older_than`` (a crash between the checkout's two transactions), by asking the gateway
    with the payment's idempotency key. Never charges again.

    - the gateway says charged: the order is applied (or, if its subscriptions moved meanwhile,
      refunded: :func:`_finish_paid`); the receipt e-mail goes out;
    - it says refused: the order fails; the customer is e-mailed;
    - it never saw the key, and the payment is older than ``older_than``: nothing was charged,
      the order is abandoned and the customer is e-mailed to place it again;
    - it still does not know, or does not answer: the order stays placed (looked at again
      next time), whatever its age (a failed lookup proves nothing);
    - the customer was asked to authenticate (3-D Secure) and has not come back: the gateway's
      answer settles it as above (authenticated: applied; failed or expired: failed, e-mailed);
      still waiting after :data:`AUTHENTICATION_TIMEOUT`, the order fails
      (``authentication_abandoned``) and the customer is e-mailed.

    Each order is settled exactly once, whoever gets there first (under the account's lock).
    ``at`` is the instant to judge ages by (default: the project clock). Returns what became of
    each order looked at. ``payment_ids`` narrows it (tests, the console).
    """
    at = at or now()
    candidates = payments_to_reconcile(before=at - older_than)
    if payment_ids is not None:
        wanted = set(payment_ids)
        candidates = [payment for payment in candidates if payment.pk in wanted]
    gateway = get_gateway()
    results = []
    for payment in candidates:
        order_id = payment.order_id
        if order_id is None:  # a renewal's: the billing run settles its own
            continue
        answer = _look_up(gateway, payment)
        if answer is not None and answer.outcome == ChargeOutcome.UNKNOWN:
            # Not known yet, or the gateway did not answer: looked at again next time.
            results.append(_result(Order.objects.get(pk=order_id)))
            continue
        if payment.status == PaymentStatus.REQUIRES_ACTION and (
                answer is None or answer.outcome == ChargeOutcome.REQUIRES_ACTION):
            if payment.created_at > at - AUTHENTICATION_TIMEOUT:
                results.append(_result(Order.objects.get(pk=order_id)))  # still authenticating
                continue
            logger.warning("Payment %s: authentication abandoned after %s", payment.pk,
                           AUTHENTICATION_TIMEOUT)
            answer = _Answer(ChargeOutcome.DECLINED, "", AUTHENTICATION_ABANDONED,
                             "authentication_abandoned")
        if answer is None:
            if payment.created_at > at - older_than:
                # Unknown but recent: the gateway may still be working on it.
                results.append(_result(Order.objects.get(pk=order_id)))
                continue
            answer = _Answer(ChargeOutcome.DECLINED, "", PAYMENT_NOT_RECEIVED, "not_received")
        try:
            results.append(_settle(order_id=order_id, account_id=payment.account_id,
                                   answer=answer, actor=None, notify_failure=True))
        except PaymentFailed:
            results.append(_result(Order.objects.get(pk=order_id)))
    return results


def payments_reconcile_due(*, at: datetime | None = None) -> dict[str, int]:
    """The periodic reconciliation job (run every minute by the scheduler, or
    ``prorata reconcile-payments``): :func:`payment_reconcile` of every order payment pending or
    unknown for longer than :data:`RECONCILE_AFTER` at ``at`` (default: the project clock).
    Returns counts for the job's log: ``looked_at``, ``paid`` (applied), ``failed``,
    ``refunded`` (charged but the subscription had moved), ``still_placed``; and of renewals'
    Pay now attempts awaiting an authentication
    (:func:`~prorata.billing.renewals.renewal_authentications_reconcile`): ``renewals_paid``,
    ``renewals_failed`` (abandoned or failed: back on the dunning schedule),
    ``renewals_waiting``."""
    from prorata.billing.renewals import renewal_authentications_reconcile

    results = payment_reconcile(older_than=RECONCILE_AFTER, at=at)
    counts = {"looked_at": len(results), "paid": 0, "failed": 0, "refunded": 0,
              "still_placed": 0}
    for result in results:
        if result.status in (OrderStatus.PAID, OrderStatus.INVOICED):
            counts["paid"] += 1
        elif result.status in (OrderStatus.PLACED, PaymentStatus.REQUIRES_ACTION):
            counts["still_placed"] += 1
        elif result.order.failure_code == "order_outdated":
            counts["refunded"] += 1
        else:
            counts["failed"] += 1
    counts.update(renewal_authentications_reconcile(at=at))
    return counts


def payment_settle(*, idempotency_key: str) -> str:
    """Settle the card payment sent with ``idempotency_key`` now, from what the gateway says of
    it (a provider's webhook announced an outcome: :mod:`prorata.payments.stripe_webhooks`). The
    gateway is asked again (``lookup``) rather than the event believed: its answer is the current
    state, whatever order the events arrive in. Never charges.

    The writers are the reconciliation's: an order's payment goes through :func:`_settle` (applied
    once under the account's lock, or failed; an order already settled keeps its first answer); a
    renewal's success through :func:`~prorata.billing.renewals.renewal_payment_succeeded` (once:
    only a pending payment, or one awaiting its authentication); a renewal's refusal is left to
    the billing run, which drives the payment again with the same key and records the refusal
    with its dunning, except for a Pay now attempt whose authentication failed, settled by
    :func:`~prorata.billing.renewals.renewal_payment_confirm` as the return page does. An answer
    not final yet (unknown, authentication under way) changes nothing.

    Returns what was done, for the event's record: ``no_such_payment``, ``settled_before``,
    ``not_known_yet``, ``never_received``, ``requires_action``, ``paid``, ``failed``,
    ``left_to_billing_run``.
    """
    from prorata.billing.renewals import renewal_payment_succeeded

    payment = Payment.objects.filter(idempotency_key=str(idempotency_key or "")[:255]).first()
    if payment is None:
        return "no_such_payment"
    if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.FAILED):
        return "settled_before"
    answer = _look_up(get_gateway(), payment)
    if answer is None:
        return "never_received"
    if answer.outcome == ChargeOutcome.UNKNOWN:
        return "not_known_yet"
    if answer.outcome == ChargeOutcome.REQUIRES_ACTION:
        return "requires_action"
    if payment.order_id is None:
        if (answer.outcome != ChargeOutcome.SUCCEEDED and payment.invoice_id is not None
                and payment.status == PaymentStatus.REQUIRES_ACTION
                and payment.completed_at is None):
            from prorata.billing.renewals import renewal_payment_confirm

            return renewal_payment_confirm(account_id=payment.account_id,
                                           invoice_id=payment.invoice_id)
        if answer.outcome != ChargeOutcome.SUCCEEDED:
            return "left_to_billing_run"
        recorded = renewal_payment_succeeded(payment_id=payment.pk, reference=answer.reference,
                                             at=now())
        return "paid" if recorded else "settled_before"
    try:
        result = _settle(order_id=payment.order_id, account_id=payment.account_id,
                         answer=answer, actor=None, notify_failure=True)
    except PaymentFailed:
        return "failed"
    return "paid" if result.status in (OrderStatus.PAID, OrderStatus.INVOICED) else str(
        result.status)


# --- renewal on or off (S2) -------------------------------------------------------------------------

def _renewal_set(*, account: Account, user: User, product_code: str, auto_renew: bool,
                 reason: str = "", by_staff: bool = False) -> Subscription:
    """Turn the automatic renewal of ``account``'s ``product_code`` on or off (S2, S3).

    Only the account's billing contact, and never online for a corporate account (its advisor
    does it: :class:`~prorata_core.errors.CorporateAccount` names them); with ``by_staff``,
    whoever :func:`~prorata.subscriptions.selectors.may_act_as_staff` (an operator API key
    too), corporate accounts included. The subscription stays
    active to the end of its paid period either way; with renewal off it then expires. The
    change, its history entry, the audit entry and the confirmation e-mail are one transaction.
    """
    from django.utils.translation import gettext_noop

    from prorata.subscriptions.selectors import _contact
    from prorata_core.errors import ChangeRefused, CorporateAccount
    from prorata_core.policy import BillingMode

    require_may_order(user, account, by_staff=by_staff)
    if account.billing_mode == BillingMode.CORPORATE and not by_staff:
        contact = _contact(account)
        raise CorporateAccount(
            f"This account is billed through the Corporate Billing Center: contact {contact} to "
            "change, cancel or renew it.",
            contact=contact,
        )
    at = now()
    with transaction.atomic():
        account = lock_account(account.pk)
        subscription = (Subscription.objects.select_for_update()
                        .select_related("product", "plan", "cycle")
                        .filter(account=account, product__code=product_code).first())
        if subscription is None:
            raise ValidationError(gettext_noop("There is no subscription to this product."),
                                  product=product_code)
        if subscription.status not in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE):
            raise ChangeRefused(gettext_noop(
                "Only an active subscription renews: choose Subscribe now to buy a plan."))
        if subscription.auto_renew == auto_renew:
            return subscription
        before = subscription_describe(subscription) | {"auto_renew": subscription.auto_renew}
        subscription.auto_renew = auto_renew
        subscription.save(update_fields=["auto_renew"])
        after = subscription_describe(subscription) | {"auto_renew": auto_renew}
        if reason:
            after["reason"] = reason  # the customer's words, for staff (event and audit log)
        entry = SubscriptionEvent.objects.create(
            subscription=subscription, at=at,
            kind=(SubscriptionEvent.Kind.RENEWAL_RESUMED if auto_renew
                  else SubscriptionEvent.Kind.RENEWAL_CANCELLED),
            before=before, after=after, actor=user,
        )
        batch = WebhookBatch()
        transition_webhook(batch, subscription=subscription, adding=False, at=at,
                           entry_id=entry.pk,
                           event="renewal_resumed" if auto_renew else "renewal_cancelled")
        batch.save()
        action = "subscription.resume_renewal" if auto_renew else "subscription.cancel_renewal"
        audit_record(actor=user, action=action, account=account, obj=subscription,
                     before=before, after=after)
        template = "renewal_resumed" if auto_renew else "renewal_cancelled"
        notify_billing_contacts(
            account=account, template=template,
            context={"product": subscription.product.name, "plan": subscription.plan.name,
                     "licenses": subscription.quantity,
                     "period_end": format_instant(subscription.period_end),
                     "url": f"/billing/{account.pk}/"},
            dedupe_key=f"renewal:{subscription.pk}:{template}:{format_instant(at)}",
        )
    return subscription


#: The longest reason a customer may give for cancelling (characters).
CANCEL_REASON_MAX = 1000


def subscription_cancel_renewal(*, account: Account, user: User, product_code: str,
                                reason: str = "", by_staff: bool = False) -> Subscription:
    """Cancel the next renewal (S2): the subscription stays active until its period ends, then
    expires. A confirmation e-mail goes to the billing contacts. Idempotent.

    ``reason`` (optional, at most :data:`CANCEL_REASON_MAX` characters) is kept with the history
    entry and the audit entry, where staff read it; a longer one is refused and nothing changes."""
    from django.utils.translation import gettext_noop

    reason = mask_card_numbers(" ".join(reason.split()))
    if len(reason) > CANCEL_REASON_MAX:
        from prorata.subscriptions.errors import CancelReasonTooLong

        raise CancelReasonTooLong(gettext_noop(
            "Please keep the reason under %(max)s characters."), max=CANCEL_REASON_MAX)
    return _renewal_set(account=account, user=user, product_code=product_code, auto_renew=False,
                        reason=reason, by_staff=by_staff)


def subscription_resume_renewal(*, account: Account, user: User, product_code: str,
                                by_staff: bool = False) -> Subscription:
    """Undo :func:`subscription_cancel_renewal` before the period ends (S2). Idempotent."""
    return _renewal_set(account=account, user=user, product_code=product_code, auto_renew=True,
                        by_staff=by_staff)
