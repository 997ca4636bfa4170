"""The payment gateway interface (DESIGN §7, §8 "Charging is not invoicing").

A gateway turns card details into a token (the number never reaches Prorata's database), charges and
refunds a token with an idempotency key, and answers what happened to an attempt whose outcome was
unknown. :class:`Gateway` is the contract; :func:`get_gateway` returns the configured implementation:
``settings.PRORATA_PAYMENT_GATEWAY``, a dotted path to a class or a zero-argument factory, by default the
offline :class:`prorata.payments.sandbox.SandboxGateway`. A real provider is another implementation of
the same protocol.

Rules every implementation keeps, and every caller relies on:

- ``charge`` and ``refund`` with the same ``idempotency_key`` and the same parameters return the same
  result and move money once. The same key with other parameters raises
  :class:`~prorata.payments.errors.IdempotencyKeyReused`.
- Call ``charge`` and ``refund`` outside any database transaction: a provider cannot roll back.
- ``ChargeOutcome.UNKNOWN`` (a timeout, a crash) means "maybe charged": never charge again with a new
  key; reconcile with :meth:`Gateway.lookup` (same key) later. ``lookup`` returning ``None`` means the
  provider never saw the attempt, so it is safe to retry it, with the same key.
- ``ChargeResult.message`` is English text for the customer, suitable to show as is (and marked for
  translation: pass it through ``gettext`` to show it in the customer's language).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from django.conf import settings
from django.utils.module_loading import import_string
from django.utils.translation import gettext_noop

from prorata.payments.errors import CardRejected, IdempotencyKeyReused
from prorata_core.money import Money

__all__ = [
    "DEFAULT_GATEWAY",
    "CardDetails",
    "CardRejected",
    "ChargeOutcome",
    "ChargeResult",
    "Gateway",
    "IdempotencyKeyReused",
    "TokenizedCard",
    "get_gateway",
]

DEFAULT_GATEWAY = "prorata.payments.sandbox.SandboxGateway"


@dataclass(frozen=True)
class CardDetails:
    """Card details as typed by the customer; kept in memory only, never stored or logged.

    ``number`` may contain spaces and dashes. ``exp_year`` is four digits (two are read as 20YY).
    """

    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str = field(repr=False)


@dataclass(frozen=True)
class TokenizedCard:
    """What Prorata keeps of a card: the gateway's token, brand, last four digits and expiry."""

    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


class ChargeOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    #: The gateway did not answer (timeout, crash): reconcile with ``lookup``, never charge again.
    UNKNOWN = "unknown"


#: The customer-facing message of each outcome (English msgids; translate them when shown).
OUTCOME_MESSAGES: dict[ChargeOutcome, str] = {
    ChargeOutcome.SUCCEEDED: gettext_noop("Payment accepted."),
    ChargeOutcome.DECLINED: gettext_noop("Your card was declined. Use another card."),
    ChargeOutcome.INSUFFICIENT_FUNDS: gettext_noop(
        "Your card has insufficient funds. Use another card."
    ),
    ChargeOutcome.UNKNOWN: gettext_noop(
        "We could not confirm the payment with your bank. Do not pay again: "
        "we will check it and let you know."
    ),
}


@dataclass(frozen=True)
class ChargeResult:
    """The outcome of a charge or refund; ``reference`` is the gateway's id of it (``""`` if none)."""

    outcome: ChargeOutcome
    reference: str
    message: str

    @property
    def succeeded(self) -> bool:
        return self.outcome == ChargeOutcome.SUCCEEDED


@runtime_checkable
class Gateway(Protocol):
    """A payment provider. Amounts are :class:`Money` (integer minor units)."""

    def tokenize(self, *, card: CardDetails, at: datetime) -> TokenizedCard:
        """Exchange card details for a reusable token.

        Raises :class:`CardRejected` for a number that fails the Luhn check, a card expired at ``at``
        (it is valid through the last day of its expiry month) or a malformed security code.
        """
        ...

    def charge(
        self, *, token: str, amount: Money, idempotency_key: str, description: str
    ) -> ChargeResult:
        """Charge ``amount`` (> 0) to ``token``. Same key twice → the same result, charged once."""
        ...

    def refund(self, *, reference: str, amount: Money, idempotency_key: str) -> ChargeResult:
        """Give back ``amount`` (> 0, at most what is left) of the charge ``reference``."""
        ...

    def lookup(self, *, idempotency_key: str) -> ChargeResult | None:
        """The true outcome of the charge or refund sent with ``idempotency_key``; ``None`` if the
        gateway never received it (then retrying with the same key is safe)."""
        ...


def get_gateway() -> Gateway:
    """The configured gateway: ``settings.PRORATA_PAYMENT_GATEWAY`` (a dotted path to a class or a
    zero-argument factory), by default the offline sandbox. Built on every call: the sandbox keeps
    its state in the database, so a new instance is cheap and sees everything."""
    factory = import_string(getattr(settings, "PRORATA_PAYMENT_GATEWAY", DEFAULT_GATEWAY))
    gateway: Gateway = factory()
    return gateway
