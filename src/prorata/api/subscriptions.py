"""API area "subscriptions": the live order summary (quote), the cart, the checkout, and the
account's subscriptions (DESIGN §3, §8).

Every amount is a :class:`~prorata.api.money.MoneyOut` (integer minor units, never a float). Quotes
and the checkout go through the one engine's selectors and services
(:mod:`prorata.subscriptions.selectors`, :mod:`prorata.subscriptions.services`); refusals are their
``ProrataError``\\ s with the engine's machine codes.

The checkout takes an ``Idempotency-Key`` header, as Stripe defines it (DESIGN §8): scoped to the
account; a retry with the same key and body answers the first result (same status and body, with
the header ``Idempotent-Replayed: true``); the same key with another body is a 409
``idempotency_conflict``; while the first request is still running, a 409 ``in_progress`` (safe to
retry).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpResponse
from ninja import Header, Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from prorata.accounts.models import Account, User
from prorata.accounts.permissions import Action, account_for
from prorata.api import examples
from prorata.api.auth import ApiRequest
from prorata.api.billing import DocumentOut, ListQuery
from prorata.api.errors import IdempotencyKeyRequired
from prorata.api.money import MoneyOut, Out, money
from prorata.api.operator import documented
from prorata.api.pagination import Page, cursor_decode, page_of
from prorata.api.schemas import errors
from prorata.api.selectors import subscriptions_page
from prorata.billing.models import PaymentStatus
from prorata.common.clock import instant_from_json
from prorata.subscriptions.errors import QuoteChanged
from prorata.subscriptions.models import OrderStatus, Subscription
from prorata.subscriptions.selectors import (
    CheckoutItem,
    CheckoutQuote,
    Quote,
    cart_items,
    checkout_quote,
    order_quote,
)
from prorata.subscriptions.services import (
    CheckoutResult,
    cart_add,
    cart_remove,
    checkout_place,
    subscription_cancel_renewal,
    subscription_resume_renewal,
)
from prorata_core.errors import ValidationError
from prorata_core.orders import Configuration, OrderLine, Totals

router = Router(tags=["subscriptions"])

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


# --- the order summary --------------------------------------------------------------------------

class LineOut(Out):
    """One line of the engine's order: a credit for unused time (negative) or a charge."""

    kind: str
    description: str
    plan_code: str
    cycle_code: str
    period_start: datetime
    period_end: datetime
    quantity: int
    unit_amount: MoneyOut
    ratio: str = Field(description="The exact proration ratio, 'numerator/denominator'.")
    amount: MoneyOut
    tax_rate_bp: int = Field(description="Tax rate in basis points (2000 = 20 %).")
    tax: MoneyOut

    @staticmethod
    def of(line: OrderLine) -> LineOut:
        return LineOut(
            kind=line.kind.value, description=line.description, plan_code=line.plan_code,
            cycle_code=line.cycle_code, period_start=line.period.start,
            period_end=line.period.end, quantity=line.quantity,
            unit_amount=MoneyOut.of(line.unit_amount),
            ratio=f"{line.ratio.numerator}/{line.ratio.denominator}",
            amount=MoneyOut.of(line.amount), tax_rate_bp=line.tax_rate_bp,
            tax=MoneyOut.of(line.tax),
        )


class TotalsOut(Out):
    """``total = subtotal + tax``; the credit balance is applied up to the total:
    ``amount_due`` is charged now, or ``credit_created`` goes to the account's balance."""

    subtotal: MoneyOut
    tax: MoneyOut
    total: MoneyOut
    credit_applied: MoneyOut
    amount_due: MoneyOut
    credit_created: MoneyOut

    @staticmethod
    def of(totals: Totals) -> TotalsOut:
        return TotalsOut(
            subtotal=MoneyOut.of(totals.subtotal), tax=MoneyOut.of(totals.tax),
            total=MoneyOut.of(totals.total), credit_applied=MoneyOut.of(totals.credit_applied),
            amount_due=MoneyOut.of(totals.amount_due),
            credit_created=MoneyOut.of(totals.credit_created),
        )


class PeriodOut(Out):
    """A billing period ``[start, end)``."""

    start: datetime
    end: datetime


class ConfigurationOut(Out):
    plan: str
    plan_name: str
    cycle: str
    quantity: int
    unit_amount: MoneyOut


class QuoteOut(Out):
    """The order summary for one product (S7, S8): the engine's lines, totals with the account's
    credit applied, and the new period starting now. Send ``fingerprint`` back to the checkout
    (in ``expected``) as what the customer saw."""

    product: str
    product_name: str
    kind: str
    fingerprint: str
    subscription_id: int | None
    changes: list[str]
    configuration: ConfigurationOut
    previous: ConfigurationOut | None
    currency: str
    period: PeriodOut
    next_billing_date: datetime
    lines: list[LineOut]
    totals: TotalsOut
    credit_balance: MoneyOut

    @staticmethod
    def of(quote: Quote) -> QuoteOut:
        order = quote.order

        def configuration(config: Configuration) -> ConfigurationOut:
            return ConfigurationOut(plan=config.plan.code, plan_name=config.plan.name,
                                    cycle=config.cycle.code, quantity=config.quantity,
                                    unit_amount=MoneyOut.of(config.unit_amount))

        return QuoteOut(
            product=quote.item.product_code, product_name=quote.product_name,
            kind=order.kind.value, fingerprint=quote.fingerprint,
            subscription_id=quote.subscription_id,
            changes=sorted(change.value for change in quote.changes),
            configuration=configuration(order.configuration),
            previous=configuration(quote.current) if quote.current is not None else None,
            currency=order.currency, period=PeriodOut(start=order.period.start, end=order.period.end),
            next_billing_date=order.next_billing_date,
            lines=[LineOut.of(line) for line in order.lines], totals=TotalsOut.of(order.totals),
            credit_balance=MoneyOut.of(quote.credit_balance),
        )


class TaxOut(Out):
    rate_bp: int
    rule: str
    country: str
    mention: str | None


class SummaryOut(Out):
    """Several products checked out together (the cart): each one's quote, one tax decision, the
    credit balance applied once to the sum (``totals``). ``expected`` is what the checkout wants
    back: the quotes' fingerprints, in item order."""

    at: datetime
    currency: str
    tax: TaxOut
    credit_balance: MoneyOut
    items: list[QuoteOut]
    totals: TotalsOut
    expected: list[str]

    @staticmethod
    def of(quote: CheckoutQuote) -> SummaryOut:
        return SummaryOut(
            at=quote.at, currency=quote.currency,
            tax=TaxOut(rate_bp=quote.tax.rate_bp, rule=quote.tax.rule.value,
                       country=quote.tax.country, mention=quote.tax.mention),
            credit_balance=MoneyOut.of(quote.credit_balance),
            items=[QuoteOut.of(item) for item in quote.items], totals=TotalsOut.of(quote.totals),
            expected=list(quote.fingerprints),
        )


QUOTE_BODY = {"product_code": "webinar", "plan_code": "pro", "cycle_code": "annual", "quantity": 4}
CART_BODY = {"plan_code": "pro", "cycle_code": "annual", "quantity": 4}


class QuoteIn(Schema):
    product_code: str
    plan_code: str
    cycle_code: str
    quantity: int = Field(ge=1, le=1_000_000, strict=True)  # true is not 1
    vat_number: str | None = Field(
        None, description="A VAT number to price with instead of the account's (validated).")


@router.post("/accounts/{account_id}/quote",
             response={200: QuoteOut, **errors(401, 403, 404, 409, 422)},
             summary="The order summary of a purchase or change (nothing is saved)",
             openapi_extra=documented(QuoteOut, examples.QUOTE, body=QUOTE_BODY,
                                      body_schema=QuoteIn))
def quote(request: ApiRequest, account_id: int, body: QuoteIn) -> QuoteOut:
    """What buying or changing to this plan, billing period and license count costs now: a credit
    for the unused time of the current period, a charge for a full new period from now, tax, and
    the account's credit applied (DESIGN §3). Refusals carry the policy's codes (a plan downgrade:
    ``downgrade_needs_support``; a corporate account: ``corporate_account``…)."""
    account = account_for(request.auth_user, account_id, Action.MANAGE_BILLING)
    return QuoteOut.of(order_quote(
        account=account, user=request.auth_user, product_code=body.product_code,
        plan_code=body.plan_code, cycle_code=body.cycle_code, quantity=body.quantity,
        vat_number=body.vat_number or None,
    ))


# --- the cart (S18) -----------------------------------------------------------------------------

class CartItemOut(Out):
    product_code: str
    plan_code: str
    cycle_code: str
    quantity: int


class CartOut(Out):
    """The cart's items, oldest first, and their order summary priced now (``null`` when empty)."""

    items: list[CartItemOut]
    summary: SummaryOut | None


class CartItemIn(Schema):
    plan_code: str
    cycle_code: str
    quantity: int = Field(ge=1, le=1_000_000, strict=True)  # true is not 1


def _cart(account: Account, user: User) -> CartOut:
    items = cart_items(account=account)
    summary = (SummaryOut.of(checkout_quote(account=account, user=user, items=items))
               if items else None)
    return CartOut(
        items=[CartItemOut(product_code=i.product_code, plan_code=i.plan_code,
                           cycle_code=i.cycle_code, quantity=i.quantity) for i in items],
        summary=summary,
    )


@router.get("/accounts/{account_id}/cart", response={200: CartOut, **errors(401, 403, 404, 422)},
            summary="The cart and its order summary",
            openapi_extra=documented(CartOut, examples.CART))
def cart(request: ApiRequest, account_id: int) -> CartOut:
    account = account_for(request.auth_user, account_id, Action.MANAGE_BILLING)
    return _cart(account, request.auth_user)


@router.put("/accounts/{account_id}/cart/items/{product_code}",
            response={200: CartOut, **errors(401, 403, 404, 409, 422)},
            summary="Put a product's change in the cart (replacing its earlier item)",
            openapi_extra=documented(CartOut, examples.CART, body=CART_BODY,
                                     body_schema=CartItemIn))
def cart_put(request: ApiRequest, account_id: int, product_code: str, body: CartItemIn) -> CartOut:
    """The item is quoted first: a change the policy refuses never enters the cart."""
    account = account_for(request.auth_user, account_id, Action.MANAGE_BILLING)
    cart_add(account=account, user=request.auth_user, product_code=product_code,
             plan_code=body.plan_code, cycle_code=body.cycle_code, quantity=body.quantity)
    return _cart(account, request.auth_user)


@router.delete("/accounts/{account_id}/cart/items/{product_code}",
               response={200: CartOut, **errors(401, 403, 404, 422)},
               summary="Take a product out of the cart",
               openapi_extra=documented(CartOut, examples.CART_EMPTY))
def cart_delete(request: ApiRequest, account_id: int, product_code: str) -> CartOut:
    """Idempotent: taking out a product that is not in the cart answers the cart as it is."""
    account = account_for(request.auth_user, account_id, Action.MANAGE_BILLING)
    cart_remove(account=account, user=request.auth_user, product_code=product_code)
    return _cart(account, request.auth_user)


# --- the checkout -------------------------------------------------------------------------------

class ItemIn(Schema):
    product_code: str
    plan_code: str
    cycle_code: str
    quantity: int = Field(ge=1, le=1_000_000, strict=True)  # true is not 1


class CheckoutIn(Schema):
    """What to order: ``items``, or ``cart: true`` for the account's cart; ``expected``: the
    fingerprints of the quotes the customer saw, in item order. Payment when money is due: the
    saved card ``payment_method_id``, else ``card_token`` (the single-use token of the gateway's
    card form; the card is saved as the default once it has paid), else the account's default
    card."""

    items: list[ItemIn] | None = None
    cart: bool = Field(False, strict=True)
    expected: list[str] = Field(min_length=1)
    payment_method_id: int | None = Field(None, strict=True)
    card_token: str | None = Field(None, min_length=1, max_length=200)
    vat_number: str | None = None


class CheckoutOut(Out):
    """What the checkout did. ``status``: ``paid``; ``invoiced`` (an invoice left open, paid by
    transfer); ``placed`` (HTTP 202: the bank's answer is being confirmed, do not pay again);
    ``requires_action`` (HTTP 202: the bank asks the customer to authenticate the payment, 3-D
    Secure: open ``action_url`` in their browser; the order waits, nothing is charged yet)."""

    order_id: int
    status: str
    invoice: DocumentOut | None
    credit_notes: list[DocumentOut]
    amount_charged: MoneyOut
    credit_created: MoneyOut
    next_billing_dates: dict[str, datetime]
    message: str
    action_url: str = Field("", description=(
        "With status requires_action: the bank's page where the customer authenticates the "
        "payment (open it in their browser; it brings them back to the billing center's order "
        "page). Empty otherwise."))

    @staticmethod
    def of(result: CheckoutResult) -> CheckoutOut:
        return CheckoutOut(
            order_id=result.order.pk, status=result.status,
            invoice=DocumentOut.of(result.invoice) if result.invoice is not None else None,
            credit_notes=[DocumentOut.of(note) for note in result.credit_notes],
            amount_charged=MoneyOut.of(result.amount_charged),
            credit_created=MoneyOut.of(result.credit_created),
            next_billing_dates={
                product: instant_from_json(instant)
                for product, instant in result.next_billing_dates.items()
            },
            message=result.message,
            action_url=result.action_url,
        )


def _checkout_items(body: CheckoutIn) -> list[CheckoutItem] | None:
    """The items to order: the body's, or ``None`` for the cart (a retry of a cart checkout under
    the same key is answered the first result by the service, whatever the cart holds now)."""
    if body.cart == (body.items is not None):
        raise ValidationError("Send either \"items\" or \"cart\": true, not both or neither.")
    if body.items is not None:
        return [CheckoutItem(i.product_code, i.plan_code, i.cycle_code, i.quantity)
                for i in body.items]
    return None


@router.post(
    "/accounts/{account_id}/checkout",
    response={201: CheckoutOut, 202: CheckoutOut, **errors(400, 401, 402, 403, 404, 409, 422)},
    summary="Place an order (idempotent with the Idempotency-Key header)",
    openapi_extra=documented(CheckoutOut, examples.CHECKOUT, status=201, body={
        "items": [QUOTE_BODY], "expected": [examples.QUOTE["fingerprint"]]}, body_schema=CheckoutIn,
        more={202: examples.CHECKOUT_PLACED}),
)
def checkout(
    request: ApiRequest, response: HttpResponse, account_id: int, body: CheckoutIn,
    idempotency_key: str | None = Header(
        None, alias=IDEMPOTENCY_HEADER,
        description="Required: a new unique value per order (1-200 characters), the same one "
                    "on a retry.",
    ),
) -> Status[CheckoutOut]:
    """Place the order the customer confirmed, priced again now: it must be exactly the quotes
    they saw (``expected``), else 409 ``quote_changed`` with the new summary in
    ``params.summary`` and nothing written. A refused card is a 402 (``payment_declined``,
    ``insufficient_funds``) with the bank's message; nothing changed and the order can be placed
    again (with a new key). Answers 201 (``paid`` or ``invoiced``) or 202 (``placed``, or
    ``requires_action``: the customer opens ``action_url`` to authenticate the payment with
    their bank, then the same request sent again, with the same key, answers the outcome:
    201 ``paid``, a 402 ``authentication_failed`` when it failed or expired, or 202 again while
    they have not finished; an order left unauthenticated fails after 30 minutes,
    ``authentication_abandoned``)."""
    account = account_for(request.auth_user, account_id, Action.MANAGE_BILLING)
    key = (idempotency_key or "").strip()
    if not key:
        raise IdempotencyKeyRequired(
            f"Send an '{IDEMPOTENCY_HEADER}' header with a new unique value for this order (for "
            "example a UUID), and the same value if you send the request again: the order is "
            "then placed and charged once."
        )
    try:
        result = checkout_place(
            account=account, user=request.auth_user, idempotency_key=key,
            expected=body.expected, items=_checkout_items(body),
            payment_method_id=body.payment_method_id,
            card_token=body.card_token,
            vat_number=body.vat_number,
            site_url=request.build_absolute_uri("/"),
        )
    except QuoteChanged as exc:
        # The new summary in the API's own shape (amounts as money objects), like a quote's.
        exc.params = {**exc.params, "summary": SummaryOut.of(exc.quote).model_dump(mode="json")}
        raise
    if result.replayed:
        response[REPLAYED_HEADER] = "true"
    status = 202 if result.status in (OrderStatus.PLACED, PaymentStatus.REQUIRES_ACTION) else 201
    out = CheckoutOut.of(result)
    if out.action_url:  # the gateway's page, absolute (the sandbox's is on this host)
        out.action_url = request.build_absolute_uri(out.action_url)
    return Status(status, out)


# --- subscriptions ----------------------------------------------------------------------------

class SubscriptionOut(Out):
    """A subscription and its current period ``[period_start, period_end)``; it renews (if
    ``auto_renew``) on ``next_billing_date``."""

    id: int
    product: str
    product_name: str
    plan: str
    plan_name: str
    cycle: str
    quantity: int
    status: str
    auto_renew: bool
    unit_amount: MoneyOut
    invoiced_amount: MoneyOut
    period_start: datetime
    period_end: datetime
    next_billing_date: datetime

    @staticmethod
    def of(row: Subscription) -> SubscriptionOut:
        return SubscriptionOut(
            id=row.pk, product=row.product.code, product_name=row.product.name,
            plan=row.plan.code, plan_name=row.plan.name, cycle=row.cycle.code,
            quantity=row.quantity, status=row.status, auto_renew=row.auto_renew,
            unit_amount=money(row.unit_amount, row.currency),
            invoiced_amount=money(row.invoiced_amount, row.currency),
            period_start=row.period_start, period_end=row.period_end,
            next_billing_date=row.period_end,
        )


@router.get("/accounts/{account_id}/subscriptions",
            response={200: Page[SubscriptionOut], **errors(401, 403, 404, 422)},
            summary="The account's subscriptions, oldest first (paginated)",
            openapi_extra=documented(Page[SubscriptionOut], examples.SUBSCRIPTIONS_PAGE))
def subscriptions(request: ApiRequest, account_id: int,
                  filters: Query[ListQuery]) -> dict[str, Any]:
    """The list envelope: ``data``, ``has_more``, ``next_cursor`` (opaque; pass it back as
    ``cursor``)."""
    account = account_for(request.auth_user, account_id, Action.VIEW_BILLING)
    scope = f"account.subscriptions:{account.pk}"
    after = cursor_decode(scope, filters.cursor)[1] if filters.cursor else None
    rows = subscriptions_page(account=account, after_id=after, limit=filters.limit)
    return page_of(rows, limit=filters.limit, scope=scope, position=lambda s: (None, s.pk),
                   out=SubscriptionOut.of)



@router.post("/accounts/{account_id}/subscriptions/{product_code}/cancel-renewal",
             response={200: SubscriptionOut, **errors(401, 403, 404, 409, 422)},
             summary="Cancel the next renewal (S2): active to the end of the paid period",
             openapi_extra=documented(SubscriptionOut, examples.SUBSCRIPTION_RENEWAL_OFF))
def cancel_renewal(request: ApiRequest, account_id: int, product_code: str) -> SubscriptionOut:
    """Idempotent; a confirmation e-mail goes to the billing contacts. A corporate account is
    refused with its advisor's contact (409)."""
    account = account_for(request.auth_user, account_id, Action.MANAGE_BILLING)
    return SubscriptionOut.of(subscription_cancel_renewal(
        account=account, user=request.auth_user, product_code=product_code))


@router.post("/accounts/{account_id}/subscriptions/{product_code}/resume-renewal",
             response={200: SubscriptionOut, **errors(401, 403, 404, 409, 422)},
             summary="Resume the renewal cancelled before the period ends (S2)",
             openapi_extra=documented(SubscriptionOut, examples.SUBSCRIPTION))
def resume_renewal(request: ApiRequest, account_id: int, product_code: str) -> SubscriptionOut:
    """Idempotent; a confirmation e-mail goes to the billing contacts."""
    account = account_for(request.auth_user, account_id, Action.MANAGE_BILLING)
    return SubscriptionOut.of(subscription_resume_renewal(
        account=account, user=request.auth_user, product_code=product_code))
