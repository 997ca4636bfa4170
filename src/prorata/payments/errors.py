"""Errors of payments, in the project's vocabulary (:mod:`prorata_core.errors`)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from prorata_core.errors import ProrataError, ValidationError


class CardRejected(ValidationError):
    """Card details that cannot be saved: a mistyped number, an expired card, a bad security code.

    ``params["field"]`` names the field to fix: ``number``, ``expiry`` or ``cvc``.
    """

    code = "card_rejected"


class PaymentMethodNotFound(ProrataError):
    """A saved card that does not exist on this account (or belongs to another one, or was removed)."""

    code = "payment_method_not_found"
    http_status = 404


class IdempotencyKeyReused(ProrataError):
    """The same idempotency key sent to the gateway with other parameters: a bug in the caller."""

    code = "idempotency_key_reused"
    http_status = 409


class CardNotForCorporate(ProrataError):
    """A corporate account (S3, S14) pays its invoices by bank transfer on payment terms: no card
    is saved on it. ``params["contact"]``: who the account turns to (its advisor)."""

    code = "corporate_pays_by_transfer"
    http_status = 409


class CardTokenInvalid(ValidationError):
    """A card token from the gateway's form that cannot be used: unknown, already used or expired.
    Nothing is saved or charged; the customer types the card again."""

    code = "card_token_invalid"


class AuthenticationFailed(ProrataError):
    """A payment whose 3-D Secure authentication was not completed (failed, expired, or the
    answer does not match a payment awaiting it); nothing was charged."""

    code = "authentication_failed"
    http_status = 402


class StripeSignatureInvalid(ProrataError):
    """A delivery to the Stripe webhook endpoint that is not Stripe's: no or a wrong
    ``Stripe-Signature``, a timestamp outside the tolerance, or no secret configured. Nothing is
    done. ``params["reason"]``: ``signature``, ``timestamp``, ``malformed``, ``no_secret``."""

    code = "stripe_signature_invalid"
    http_status = 400


MESSAGES = {
    "card_token_invalid": _(
        "The card details could not be used (the form expired or was already sent). Type the "
        "card again."
    ),
    "authentication_failed": _(
        "The payment was not authenticated with your bank, so nothing was charged. Try again, "
        "or use another card."
    ),
    "stripe_signature_invalid": _(
        "This request does not carry a valid Stripe signature: nothing was done."
    ),
}
