"""Errors of quotes and checkouts, in the project's vocabulary (:mod:`prorata_core.errors`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prorata_core.errors import ProrataError, ValidationError

if TYPE_CHECKING:
    from prorata.subscriptions.selectors import CheckoutQuote


class QuoteChanged(ProrataError):
    """The order summary the customer confirmed is no longer what the order would be: the
    subscription changed, prices or tax moved, or time passed. Nothing was written; ``quote`` is the
    new summary to show (``params["summary"]`` is its JSON form) before the customer confirms again.
    """

    code = "quote_changed"
    http_status = 409

    def __init__(self, message: str, *, quote: CheckoutQuote, **params: Any) -> None:
        super().__init__(message, summary=quote.summary(), **params)
        self.quote = quote


class IdempotencyConflict(ProrataError):
    """The same idempotency key was sent earlier with a different request."""

    code = "idempotency_conflict"
    http_status = 409


class CheckoutInProgress(ProrataError):
    """The first request with this idempotency key is still running; retrying is safe."""

    code = "in_progress"
    http_status = 409


class OrderInProgress(ProrataError):
    """Another order for the same subscription is waiting for its payment."""

    code = "order_in_progress"
    http_status = 409


class PaymentMethodRequired(ProrataError):
    """Money is due and no card was given, and the account has no default card."""

    code = "payment_method_required"
    http_status = 422


#: The code of a refused card by the gateway's outcome (``ChargeOutcome`` values).
FAILURE_CODES = {"declined": "payment_declined", "insufficient_funds": "insufficient_funds"}


class PaymentFailed(ProrataError):
    """The card was refused (``payment_declined`` or ``insufficient_funds``): nothing was
    changed, and the order can be placed again with another card. ``code`` is one of
    :data:`codes`, or a gateway outcome (``declined``), which is named by its code."""

    code = "payment_failed"
    http_status = 402
    codes = frozenset(FAILURE_CODES.values())

    def __init__(self, message: str, *, code: str, **params: Any) -> None:
        super().__init__(message, **params)
        self.code = FAILURE_CODES.get(code, code)  # type: ignore[misc]  # the outcome names it


class NotPermitted(ProrataError):
    """An action the user's role does not allow (a customer acting as staff, say)."""

    code = "not_permitted"
    http_status = 403


class CancelReasonTooLong(ValidationError):
    """The optional reason given for cancelling a renewal is longer than the form allows."""

    code = "cancel_reason_too_long"


class VatNumberOutsideEu(ValidationError):
    """A VAT number typed for an account outside the EU, which has none (DESIGN §3 "Tax"): the
    quote and the checkout both refuse it, so that what was quoted is what can be placed."""

    code = "vat_number_outside_eu"
