"""An order's summary as typed values: what the customer saw, exactly as it is stored.

A quote (:mod:`prorata.subscriptions.selectors`) becomes an :class:`OrderSnapshot` when the order is
placed; the order stores its :meth:`~OrderSnapshot.to_json` form (``Order.snapshot``) and every
reader (the services that apply it, the confirmation page, the e-mails, the API) reads it back with
:meth:`~OrderSnapshot.from_json` (``Order.summary``) instead of indexing a dict by string keys.

JSON form (kept as it was when the snapshot was a dict, so stored orders read back unchanged):
amounts are integer minor units of the order's ``currency``; instants are ISO 8601 UTC
(``2026-03-11T00:00:00Z``); a period is ``[start, end)``; a line's ``ratio`` is the exact fraction
``"numerator/denominator"``. ``from_json(to_json(x)) == x`` and, for a stored summary,
``to_json(from_json(data)) == data`` (the tests check both).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any

from prorata.common.clock import format_instant, instant_from_json
from prorata_core.money import Money
from prorata_core.orders import LineKind, OrderKind, OrderLine, Totals
from prorata_core.periods import Period
from prorata_core.tax import TaxDecision, TaxRule


def line_json(line: OrderLine) -> dict[str, Any]:
    """An engine line as JSON (amounts in minor units, the exact ratio as ``"n/d"``)."""
    return {
        "kind": line.kind.value, "description": line.description, "plan_code": line.plan_code,
        "cycle_code": line.cycle_code, "quantity": line.quantity,
        "period_start": format_instant(line.period.start),
        "period_end": format_instant(line.period.end),
        "unit_amount": line.unit_amount.amount,
        "ratio": f"{line.ratio.numerator}/{line.ratio.denominator}",
        "amount": line.amount.amount, "tax_rate_bp": line.tax_rate_bp, "tax": line.tax.amount,
    }


def line_from_json(data: dict[str, Any], currency: str) -> OrderLine:
    """The engine's line back from :func:`line_json`."""
    numerator, denominator = data["ratio"].split("/")
    return OrderLine(
        kind=LineKind(data["kind"]), description=data["description"],
        plan_code=data["plan_code"], cycle_code=data["cycle_code"], quantity=data["quantity"],
        period=Period(instant_from_json(data["period_start"]),
                      instant_from_json(data["period_end"])),
        unit_amount=Money(data["unit_amount"], currency),
        ratio=Fraction(int(numerator), int(denominator)),
        amount=Money(data["amount"], currency), tax_rate_bp=data["tax_rate_bp"],
        tax=Money(data["tax"], currency),
    )


def totals_json(totals: Totals) -> dict[str, int]:
    return {"subtotal": totals.subtotal.amount, "tax": totals.tax.amount,
            "total": totals.total.amount, "credit_applied": totals.credit_applied.amount,
            "amount_due": totals.amount_due.amount,
            "credit_created": totals.credit_created.amount}


def totals_from_json(data: dict[str, int], currency: str) -> Totals:
    return Totals(*(Money(data[name], currency) for name in Totals._fields))


@dataclass(frozen=True, slots=True)
class ConfigurationSnapshot:
    """A configuration as it was shown: codes, the plan's name, licenses, and the price per
    license per period (minor units of the order's currency)."""

    plan: str
    plan_name: str
    cycle: str
    quantity: int
    unit_amount: int

    def to_json(self) -> dict[str, Any]:
        return {"plan": self.plan, "plan_name": self.plan_name, "cycle": self.cycle,
                "quantity": self.quantity, "unit_amount": self.unit_amount}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConfigurationSnapshot:
        return cls(plan=data["plan"], plan_name=data["plan_name"], cycle=data["cycle"],
                   quantity=data["quantity"], unit_amount=data["unit_amount"])


@dataclass(frozen=True, slots=True)
class ItemSnapshot:
    """One product of an order: the change priced (``lines``, ``totals`` of this item alone), the
    new period ``[start, end)`` and its next billing date, what it was (``previous``, ``None`` for a
    purchase) and the subscription version it was priced at (``None`` for a first purchase).

    ``auto_renew``: whether the subscription renews after this order (a change keeps the
    customer's choice; a purchase or reactivation renews). ``None`` in orders stored before it was
    recorded, which were all applied with renewal on."""

    product: str
    product_name: str
    kind: OrderKind
    fingerprint: str
    subscription_id: int | None
    subscription_version: int | None
    changes: tuple[str, ...]
    configuration: ConfigurationSnapshot
    previous: ConfigurationSnapshot | None
    period: Period
    next_billing_date: datetime
    lines: tuple[OrderLine, ...]
    totals: Totals
    auto_renew: bool | None = None

    @property
    def charge(self) -> OrderLine:
        """The line charging the new period (every item has exactly one)."""
        return next(line for line in self.lines if line.kind is LineKind.CHARGE)

    @property
    def renews(self) -> bool:
        return self.auto_renew is not False

    def to_json(self) -> dict[str, Any]:
        data = {
            "product": self.product,
            "product_name": self.product_name,
            "kind": self.kind.value,
            "fingerprint": self.fingerprint,
            "subscription_id": self.subscription_id,
            "subscription_version": self.subscription_version,
            "changes": list(self.changes),
            "configuration": self.configuration.to_json(),
            "previous": None if self.previous is None else self.previous.to_json(),
            "period": {"start": format_instant(self.period.start),
                       "end": format_instant(self.period.end)},
            "next_billing_date": format_instant(self.next_billing_date),
            "lines": [line_json(line) for line in self.lines],
            "totals": totals_json(self.totals),
        }
        if self.auto_renew is not None:
            data["auto_renew"] = self.auto_renew
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], currency: str) -> ItemSnapshot:
        previous = data.get("previous")
        return cls(
            product=data["product"],
            product_name=data["product_name"],
            kind=OrderKind(data["kind"]),
            fingerprint=data["fingerprint"],
            subscription_id=data["subscription_id"],
            subscription_version=data["subscription_version"],
            changes=tuple(data["changes"]),
            configuration=ConfigurationSnapshot.from_json(data["configuration"]),
            previous=None if previous is None else ConfigurationSnapshot.from_json(previous),
            period=Period(instant_from_json(data["period"]["start"]),
                          instant_from_json(data["period"]["end"])),
            next_billing_date=instant_from_json(data["next_billing_date"]),
            lines=tuple(line_from_json(line, currency) for line in data["lines"]),
            totals=totals_from_json(data["totals"], currency),
            auto_renew=data.get("auto_renew"),
        )


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    """A whole order as priced at ``at``: one tax decision, the credit balance it was priced with
    (minor units), its items in the order they were checked out, and the totals of all of them
    with that credit applied once. ``from_cart``: checked out from the cart (its items leave the
    cart when the order is applied)."""

    at: datetime
    currency: str
    tax: TaxDecision
    credit_balance: int
    items: tuple[ItemSnapshot, ...]
    totals: Totals
    from_cart: bool = False
    _by_product: dict[str, ItemSnapshot] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_product.update({item.product: item for item in self.items})

    @property
    def products(self) -> list[str]:
        return [item.product for item in self.items]

    def item(self, product: str) -> ItemSnapshot:
        return self._by_product[product]

    def to_json(self) -> dict[str, Any]:
        return {
            "at": format_instant(self.at),
            "currency": self.currency,
            "tax": {"rate_bp": self.tax.rate_bp, "rule": self.tax.rule.value,
                    "country": self.tax.country, "mention": self.tax.mention},
            "credit_balance": self.credit_balance,
            "items": [item.to_json() for item in self.items],
            "totals": totals_json(self.totals),
            "from_cart": self.from_cart,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OrderSnapshot:
        currency = data["currency"]
        tax = data["tax"]
        return cls(
            at=instant_from_json(data["at"]),
            currency=currency,
            tax=TaxDecision(tax["rate_bp"], TaxRule(tax["rule"]), tax["country"], tax["mention"]),
            credit_balance=data["credit_balance"],
            items=tuple(ItemSnapshot.from_json(item, currency) for item in data["items"]),
            totals=totals_from_json(data["totals"], currency),
            from_cart=bool(data.get("from_cart", False)),
        )
