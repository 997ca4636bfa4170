"""The one pricing engine: every order (purchase, change, reactivation, renewal) is priced here.

The live order summary, the checkout, a staff action and the billing run all call
:func:`price_order`; a quote is that call without saving (STYLE rule 4). The rules are DESIGN §3:

1. a change credits the unused time of the current period: the pre-tax amount invoiced for that
   period's subscription line × (period end − change instant) / (period end − period start), exact to
   the second (a :class:`~fractions.Fraction` kept on the line), nothing for a free trial;
2. it charges the new configuration for one full period starting at the change instant;
3. each line is taxed at the order's rate; every line amount and every tax is rounded once, half away
   from zero, to the minor unit, and the order's totals are exact sums of the rounded lines;
4. the account's credit balance is applied up to the amount due; a negative total becomes credit.

The next billing date is always the end of the new period.

Orders, lines and totals are immutable named tuples rather than frozen dataclasses: they are built by
the hundred thousand in a billing run, and a frozen dataclass's ``__init__`` costs three times more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from fractions import Fraction
from typing import NamedTuple

from prorata_core.catalog import BillingCycle, Plan
from prorata_core.errors import CurrencyMismatch, InvalidAmount, InvalidInstant, ValidationError
from prorata_core.money import Money
from prorata_core.periods import Period, period_after, period_starting, require_utc, seconds_between
from prorata_core.tax import TaxDecision, tax_amount

_WHOLE = Fraction(1)


class OrderKind(StrEnum):
    PURCHASE = "purchase"
    """A first paid subscription, from nothing or from a free trial."""
    CHANGE = "change"
    """Plan, license count and/or billing period of a paid subscription changed at once."""
    REACTIVATION = "reactivation"
    """An expired subscription bought again; its new period starts at payment."""
    RENEWAL = "renewal"
    """The next period of an auto-renewing subscription, starting when the current one ends."""


class LineKind(StrEnum):
    CHARGE = "charge"
    CREDIT = "credit"


@dataclass(frozen=True, slots=True)
class Configuration:
    """What a subscription is: a plan, a billing cycle, a license count and the price per license
    per period (minor units) at which it is sold."""

    plan: Plan
    cycle: BillingCycle
    quantity: int
    unit_amount: Money

    @property
    def currency(self) -> str:
        return self.unit_amount.currency

    @property
    def amount(self) -> Money:
        """Pre-tax price of one full period: unit amount × licenses."""
        return self.unit_amount * self.quantity

    def describe(self) -> str:
        noun = "license" if self.quantity == 1 else "licenses"
        return f"{self.plan.name}, {self.cycle.code}, {self.quantity} {noun}"


@dataclass(frozen=True, slots=True)
class Term:
    """A subscription's current period as it was invoiced.

    ``anchor`` is the instant the current billing cycle started (the last purchase or change);
    ``invoiced`` is the pre-tax amount of the subscription line invoiced for ``period`` (zero for a
    free trial).
    """

    configuration: Configuration
    period: Period
    anchor: datetime
    invoiced: Money


class OrderLine(NamedTuple):
    """One priced line. ``amount`` = round(``unit_amount`` × ``quantity`` × ``ratio``), negative for a
    credit; ``tax`` = round(``amount`` × ``tax_rate_bp`` / 10 000). ``ratio`` is exact: the unused
    share of the period for a credit, 1 for a full period."""

    kind: LineKind
    description: str
    plan_code: str
    cycle_code: str
    quantity: int
    period: Period
    unit_amount: Money
    ratio: Fraction
    amount: Money
    tax_rate_bp: int
    tax: Money

    @property
    def total(self) -> Money:
        return self.amount + self.tax


class Totals(NamedTuple):
    """The sums of an order's rounded lines and how the credit balance settles them.

    Exactly one of ``amount_due`` and ``credit_created`` may be non-zero.
    ``total = subtotal + tax``; ``amount_due = total − credit_applied`` when the total is positive;
    ``credit_created = −total`` when it is negative.
    """

    subtotal: Money
    tax: Money
    total: Money
    credit_applied: Money
    amount_due: Money
    credit_created: Money


class Order(NamedTuple):
    """A priced order: what the customer sees in the order summary and what is invoiced.

    ``period`` is the new billing period ``[start, end)``; ``next_billing_date`` is its end.
    """

    kind: OrderKind
    currency: str
    lines: tuple[OrderLine, ...]
    totals: Totals
    tax: TaxDecision
    configuration: Configuration
    period: Period

    @property
    def next_billing_date(self) -> datetime:
        return self.period.end


def settle(lines: tuple[OrderLine, ...] | list[OrderLine], credit_balance: Money) -> Totals:
    """Sum ``lines`` exactly and apply ``credit_balance`` (≥ 0, minor units) up to the amount due.

    The result does not depend on the order of ``lines``.
    """
    currency = credit_balance.currency
    if credit_balance.amount < 0:
        raise InvalidAmount(
            f"A credit balance cannot be negative ({credit_balance}); it is what the account may spend.",
            balance=credit_balance.as_decimal_string(),
        )
    subtotal = tax = 0
    for line in lines:
        if line.amount.currency != currency:
            raise CurrencyMismatch(
                f"The order is in {line.amount.currency} but the credit balance is in {currency}.",
                left=line.amount.currency,
                right=currency,
            )
        subtotal += line.amount.amount
        tax += line.tax.amount
    total = subtotal + tax
    applied = min(credit_balance.amount, total) if total > 0 else 0
    return Totals(
        subtotal=Money(subtotal, currency),
        tax=Money(tax, currency),
        total=Money(total, currency),
        credit_applied=Money(applied, currency),
        amount_due=Money(total - applied if total > 0 else 0, currency),
        credit_created=Money(-total if total < 0 else 0, currency),
    )


def _line(
    kind: LineKind,
    description: str,
    configuration: Configuration,
    period: Period,
    ratio: Fraction,
    amount: Money,
    rate_bp: int,
) -> OrderLine:
    return OrderLine(
        kind=kind,
        description=description,
        plan_code=configuration.plan.code,
        cycle_code=configuration.cycle.code,
        quantity=configuration.quantity,
        period=period,
        unit_amount=configuration.unit_amount,
        ratio=ratio,
        amount=amount,
        tax_rate_bp=rate_bp,
        tax=tax_amount(amount, rate_bp),
    )


def _require_term(kind: OrderKind, current: Term | None, currency: str) -> Term:
    if current is None:
        raise ValidationError(
            f"A {kind.value} needs the subscription's current period; there is none.",
            kind=kind.value,
        )
    if current.invoiced.currency != currency:
        raise CurrencyMismatch(
            f"The subscription is billed in {current.invoiced.currency}, not {currency}; "
            "keep its currency.",
            left=current.invoiced.currency,
            right=currency,
        )
    return current


def _require_within(period: Period, at: datetime) -> None:
    if not period.start <= at < period.end:
        raise InvalidInstant(
            f"A change at {at.isoformat()} is outside the current period "
            f"{period.start.isoformat()} → {period.end.isoformat()}; renew or reactivate instead.",
            at=at.isoformat(),
        )


def unused_credit(current: Term, at: datetime, rate_bp: int) -> OrderLine:
    """The credit line for the unused time ``[at, period end)`` of ``current`` (DESIGN §3, step 1).

    ``at`` must lie in ``[period start, period end)``. Amount = −invoiced × remaining / length,
    exact in whole seconds, rounded once.
    """
    period = current.period
    _require_within(period, at)
    ratio = Fraction(seconds_between(at, period.end), period.seconds)
    return _line(
        LineKind.CREDIT,
        f"Unused time of {current.configuration.describe()}",
        current.configuration,
        Period(at, period.end),
        ratio,
        -current.invoiced.scaled(ratio),
        rate_bp,
    )


def price_order(
    *,
    kind: OrderKind,
    at: datetime,
    target: Configuration,
    tax: TaxDecision,
    credit_balance: Money,
    current: Term | None = None,
) -> Order:
    """Price an order of ``kind`` at instant ``at`` (UTC) for the ``target`` configuration.

    ``current`` is required for a change and a renewal. ``credit_balance`` is the account's spendable
    credit (≥ 0) in the order's currency. Pure: the same arguments always give the same order, and
    nothing is saved. Who may place which order is :mod:`prorata_core.policy`'s business, not this one's.
    """
    require_utc(at, "order instant")
    target.plan.check_licenses(target.quantity)
    currency = target.currency
    if credit_balance.currency != currency:
        raise CurrencyMismatch(
            f"The account's credit is in {credit_balance.currency} but the order is in {currency}.",
            left=credit_balance.currency,
            right=currency,
        )
    rate = tax.rate_bp
    lines: list[OrderLine] = []
    if kind is OrderKind.RENEWAL:
        term = _require_term(kind, current, currency)
        if at < term.period.end:
            raise InvalidInstant(
                f"The period ends at {term.period.end.isoformat()}; it cannot be renewed at "
                f"{at.isoformat()}, before it ends.",
                at=at.isoformat(),
            )
        if target.cycle != term.configuration.cycle:
            period = period_starting(term.period.end, target.cycle.months)
        else:
            period = period_after(term.period, term.anchor, target.cycle.months)
    else:
        if kind is OrderKind.CHANGE:
            term = _require_term(kind, current, currency)
            _require_within(term.period, at)
            if term.invoiced:
                lines.append(unused_credit(term, at, rate))
        period = period_starting(at, target.cycle.months)
    lines.append(
        _line(LineKind.CHARGE, target.describe(), target, period, _WHOLE, target.amount, rate)
    )
    lines_tuple = tuple(lines)
    return Order(
        kind=kind,
        currency=currency,
        lines=lines_tuple,
        totals=settle(lines_tuple, credit_balance),
        tax=tax,
        configuration=target,
        period=period,
    )
