"""Money in the API: ``{"amount": <minor units, int>, "currency": "EUR", "decimal": "25.55"}``.

Never a float (DESIGN §3): ``amount`` is the exact integer of minor units (cents), ``decimal`` the
same value as a plain decimal string (no grouping, the currency's number of decimals), for display.
"""

from __future__ import annotations

from pydantic import BaseModel

from prorata_core.money import Money


class Out(BaseModel):
    """Base of the billing areas' output schemas: a plain pydantic model, built once by the
    handler from the engine's values. (ninja's ``Schema`` re-reads every nested object through
    its ORM-attribute getter when the response is validated: on the quote that was a third of
    the request's time; an instance of a plain model is taken as it is.)"""


class MoneyOut(Out):
    amount: int
    currency: str
    decimal: str

    @staticmethod
    def of(value: Money) -> MoneyOut:
        return MoneyOut(amount=value.amount, currency=value.currency,
                        decimal=value.as_decimal_string())


def money(amount: int, currency: str) -> MoneyOut:
    """``amount`` minor units of ``currency`` as the API shows them."""
    return MoneyOut.of(Money(amount, currency))
