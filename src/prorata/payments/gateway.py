"""The payment gateway interface (DESIGN §7, §8 "Charging is not invoicing"), shaped for real providers.

Card details never reach Prorata's server. The customer types them into the gateway's own card form
(its script and frame, served from the gateway's host: :meth:`Gateway.card_form`), which sends them
to the gateway and gives the page a **single-use token**; Prorata's forms and API receive only that
token. :meth:`Gateway.payment_method_create` turns it into a reusable payment method (what a
:class:`~prorata.payments.models.PaymentMethod` keeps: the gateway's id, brand, last four digits and
expiry). :class:`Gateway` is the contract; :func:`get_gateway` returns the configured implementation:
``settings.PRORATA_PAYMENT_GATEWAY`` (``sandbox``, ``stripe`` or a dotted path to a class or a
zero-argument factory), by default the offline :class:`prorata.payments.sandbox.SandboxGateway`.
:class:`prorata.payments.stripe_gateway.StripeGateway` implements the same protocol on Stripe's
SetupIntents and PaymentIntents: docs/payments.md says what ran against what.

Rules every implementation keeps, and every caller relies on:

- ``charge`` and ``refund`` with the same ``idempotency_key`` and the same parameters return the same
  result and move money once. The same key with other parameters raises
  :class:`~prorata.payments.errors.IdempotencyKeyReused`.
- Call ``payment_method_create``, ``charge`` and ``refund`` outside any database transaction: a
  provider cannot roll back.
- ``ChargeOutcome.UNKNOWN`` (a timeout, a crash) means "maybe charged": never charge again with a new
  key; reconcile with :meth:`Gateway.lookup` (same key) later. ``lookup`` returning ``None`` means the
  provider never saw the attempt, so it is safe to retry it, with the same key.
- ``ChargeOutcome.REQUIRES_ACTION`` (3-D Secure / SCA): nothing is charged yet. On a charge made with
  the customer present (``off_session=False``), ``ChargeResult.action_url`` is the page where they
  authenticate; the gateway then sends their browser to ``return_url``, and :meth:`Gateway.lookup`
  (same key) says what became of it: ``SUCCEEDED``, ``DECLINED`` (authentication failed or expired),
  or still ``REQUIRES_ACTION``. Off session (a renewal by the billing run) there is no one to
  authenticate: the attempt ends there, and the customer is asked to come and pay.
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

from prorata.payments.errors import CardRejected, CardTokenInvalid, IdempotencyKeyReused
from prorata_core.money import Money

__all__ = [
    "DEFAULT_GATEWAY",
    "CardForm",
    "CardRejected",
    "CardTokenInvalid",
    "ChargeOutcome",
    "ChargeResult",
    "Gateway",
    "IdempotencyKeyReused",
    "TokenizedCard",
    "get_gateway",
]

DEFAULT_GATEWAY = "prorata.payments.sandbox.SandboxGateway"
#: The names ``PRORATA_PAYMENT_GATEWAY`` accepts besides a dotted path.
GATEWAYS = {
    "sandbox": DEFAULT_GATEWAY,
    "stripe": "prorata.payments.stripe_gateway.StripeGateway",
}


@dataclass(frozen=True)
class TokenizedCard:
    """What Prorata keeps of a card: the gateway's reusable payment method id (``token``), the
    brand, the last four digits and the expiry."""

    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class CardForm:
    """What a page needs to show the gateway's card form: its script (``script_url``, loaded with
    the Subresource Integrity hash ``integrity``) and the options the script is started with
    (``options``: JSON-safe, e.g. the form's frame URL or a publishable key, and the locale)."""

    script_url: str
    integrity: str
    options: dict[str, str] = field(default_factory=dict)


class ChargeOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    #: The bank asks the customer to authenticate (3-D Secure): nothing is charged yet.
    REQUIRES_ACTION = "requires_action"
    #: The gateway did not answer (timeout, crash): reconcile with ``lookup``, never charge again.
    UNKNOWN = "unknown"


#: The customer-facing message of each outcome (English msgids; translate them when shown).
OUTCOME_MESSAGES: dict[ChargeOutcome, str] = {
    ChargeOutcome.SUCCEEDED: gettext_noop("Payment accepted."),
    ChargeOutcome.DECLINED: gettext_noop("Your card was declined. Use another card."),
    ChargeOutcome.INSUFFICIENT_FUNDS: gettext_noop(
        "Your card has insufficient funds. Use another card."
    ),
    ChargeOutcome.REQUIRES_ACTION: gettext_noop(
        "Your bank asks you to confirm this payment: authenticate it to pay."
    ),
    ChargeOutcome.UNKNOWN: gettext_noop(
        "We could not confirm the payment with your bank. Do not pay again: "
        "we will check it and let you know."
    ),
}


@dataclass(frozen=True)
class ChargeResult:
    """The outcome of a charge or refund; ``reference`` is the gateway's id of it (``""`` if none);
    ``action_url``, for ``REQUIRES_ACTION`` with the customer present, the page where they
    authenticate (``""`` otherwise)."""

    outcome: ChargeOutcome
    reference: str
    message: str
    action_url: str = ""

    @property
    def succeeded(self) -> bool:
        return self.outcome == ChargeOutcome.SUCCEEDED


@runtime_checkable
class Gateway(Protocol):
    """A payment provider. Amounts are :class:`Money` (integer minor units)."""

    def card_form(self, *, locale: str) -> CardForm:
        """The gateway's card form for a page in ``locale`` (``"en"``, ``"fr"``): a script from
        the gateway's host that collects the card and puts a single-use token in the page's
        ``card_token`` field. The page never sees the card number."""
        ...

    def payment_method_create(self, *, token: str, at: datetime) -> TokenizedCard:
        """Exchange a single-use token from the card form for a reusable payment method.

        Raises :class:`CardTokenInvalid` for a token the gateway does not know, one already used
        or one expired; nothing is created then.
        """
        ...

    def charge(
        self, *, token: str, amount: Money, idempotency_key: str, description: str,
        off_session: bool = False, return_url: str = "",
    ) -> ChargeResult:
        """Charge ``amount`` (> 0) to the payment method ``token``. Same key twice → the same
        result, charged once. ``off_session``: the customer is not there (a renewal);
        ``return_url``: where the gateway sends the customer's browser after authenticating."""
        ...

    def refund(self, *, reference: str, amount: Money, idempotency_key: str) -> ChargeResult:
        """Give back ``amount`` (> 0, at most what is left) of the charge ``reference``."""
        ...

    def lookup(self, *, idempotency_key: str) -> ChargeResult | None:
        """The true outcome of the charge or refund sent with ``idempotency_key``; ``None`` if the
        gateway never received it (then retrying with the same key is safe). An authentication
        abandoned past the gateway's expiry is answered ``DECLINED``."""
        ...


def gateway_path() -> str:
    """The dotted path of the configured gateway: ``settings.PRORATA_PAYMENT_GATEWAY`` is
    ``sandbox``, ``stripe`` (:data:`GATEWAYS`) or a dotted path."""
    name = str(getattr(settings, "PRORATA_PAYMENT_GATEWAY", "") or "sandbox").strip()
    return GATEWAYS.get(name.lower(), name)


def get_gateway() -> Gateway:
    """The configured gateway: ``settings.PRORATA_PAYMENT_GATEWAY`` (``sandbox``, ``stripe``, or a
    dotted path to a class or a zero-argument factory), by default the offline sandbox. Built on
    every call: the sandbox keeps its state in the database and the Stripe gateway its attempts,
    so a new instance is cheap and sees everything."""
    factory = import_string(gateway_path())
    gateway: Gateway = factory()
    return gateway
