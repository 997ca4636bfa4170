"""The Stripe gateway: :class:`~prorata.payments.gateway.Gateway` on the official ``stripe`` library.

Selected by ``PRORATA_PAYMENT_GATEWAY=stripe`` with ``PRORATA_STRIPE_SECRET_KEY``,
``PRORATA_STRIPE_PUBLISHABLE_KEY`` and ``PRORATA_STRIPE_WEBHOOK_SECRET`` (a system check refuses
the selection without them: :mod:`prorata.payments.checks`). What ran against what: only a local
fake Stripe HTTP server (``tests/app/payments/fake_stripe.py``), never Stripe itself (no network
here); docs/payments.md.

How the protocol maps to Stripe:

- **card form**: Prorata's own adapter script (``/payments/stripe/v1/card.js``, pinned by its SRI
  hash) loads Stripe.js from ``js.stripe.com`` (Stripe forbids copying it, so it cannot be pinned)
  and mounts Stripe's Card Element in the page's ``[data-card-form]`` slot; on submit it calls
  ``stripe.createPaymentMethod`` and puts the ``pm_…`` id in ``card_token``. The card goes from the
  Element's frame to Stripe, never to Prorata.
- **payment_method_create** (``pm_…``, or a legacy Stripe.js ``tok_…``): a Customer for the card
  and a SetupIntent (``usage=off_session``, confirmed at once) that attaches it for renewals. The
  gateway token Prorata keeps is ``cus_…/pm_…``. A card whose bank asks for authentication when it
  is saved is saved all the same: its first payment carries the 3-D Secure step (with the customer
  present), or a renewal answers ``requires_action``.
- **charge**: a PaymentIntent (``confirm=true``, card only), ``off_session`` for a renewal,
  ``return_url`` otherwise, Prorata's idempotency key as Stripe's ``Idempotency-Key`` and in the
  metadata (``prorata_idempotency_key``). Outcomes: ``succeeded``; ``requires_action`` with the
  ``redirect_to_url`` page as ``action_url`` (the same field the sandbox fills with its challenge
  page); a card error ``card_declined`` (``insufficient_funds`` by its decline code) as a definite
  refusal; ``authentication_required`` off session as ``requires_action`` without a page; a
  timeout, a lost connection, a 5xx or a 429 as ``unknown``.
- **lookup**: every attempt is recorded (:class:`~prorata.payments.models.StripeAttempt`) before its
  request leaves; then the PaymentIntent by its stored id, or, when the answer was lost, the
  customer's PaymentIntents listed (a consistent read, unlike Stripe's search) for the one whose
  metadata carries the key. No record, or no such PaymentIntent: ``None`` (Stripe never saw it).
- **the same key again** (a renewal driven again, a reconciliation): the PaymentIntent already
  made is read back, never created twice, even after Stripe's 24 hours of idempotency keys.
- **an authentication abandoned**: a PaymentIntent still ``requires_action`` after
  :data:`AUTHENTICATION_MINUTES` is cancelled when next looked at and answered ``declined``, so
  that it cannot be confirmed after Prorata failed its order.
- **refund**: a Refund of the PaymentIntent with its own idempotency key, recorded the same way.

Calls are made outside any database transaction (the protocol's rule); each record is written in
its own short transaction.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import stripe
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_noop

from prorata.common.clock import now
from prorata.common.db import JOB_ATTEMPTS, retry_transient
from prorata.payments.errors import CardRejected, CardTokenInvalid, IdempotencyKeyReused
from prorata.payments.gateway import (
    OUTCOME_MESSAGES,
    CardForm,
    ChargeOutcome,
    ChargeResult,
    TokenizedCard,
)
from prorata.payments.models import StripeAttempt, StripeAttemptKind
from prorata.payments.sandbox import (
    AUTHENTICATION_EXPIRED,
    AUTHENTICATION_FAILED,
    CARD_NOT_ON_FILE,
    NOTHING_TO_REFUND,
    REFUND_DONE,
    TOKEN_UNKNOWN,
)
from prorata_core.errors import InvalidAmount
from prorata_core.money import Money

logger = logging.getLogger(__name__)

#: Where the page's adapter script is served (Prorata's own file, pinned by its hash).
PREFIX = "/payments/stripe/v1"
#: Stripe.js: always loaded from Stripe's host (Stripe's rule), never bundled or pinned.
STRIPE_JS = "https://js.stripe.com/v3/"
#: What the pages' Content-Security-Policy adds while this gateway is selected (Stripe's own list
#: for Stripe.js and the Card Element): its script, its frames, its API, and the bank's page a
#: checkout needing 3-D Secure is sent on to.
CONTENT_SECURITY_POLICY: dict[str, list[str]] = {
    "script-src": ["https://js.stripe.com"],
    "connect-src": ["https://api.stripe.com"],
    "frame-src": ["https://js.stripe.com", "https://hooks.stripe.com"],
    "form-action": ["https://hooks.stripe.com"],
}
#: The metadata key that carries Prorata's idempotency key on every PaymentIntent and Refund.
METADATA_KEY = "prorata_idempotency_key"
#: How long a customer has to authenticate a payment (project clock): a PaymentIntent still
#: awaiting authentication after that is cancelled when next looked at, and answered declined, so
#: that it cannot be confirmed after Prorata gave up on its order (30 minutes,
#: ``subscriptions.services.AUTHENTICATION_TIMEOUT``).
AUTHENTICATION_MINUTES = 15
#: How many of a customer's PaymentIntents (newest first) ``lookup`` reads to find a lost answer.
LIST_LIMIT = 300

REQUEST_REFUSED = gettext_noop(
    "The payment provider refused this payment request, so nothing was charged. Try again, or "
    "use another card."
)
CARD_NOT_SAVED = gettext_noop(
    "Your bank did not accept this card, so it was not saved. Check the details or use another "
    "card."
)
REFUND_UNCONFIRMED = gettext_noop(
    "The payment provider did not confirm the refund yet; it will be checked again."
)

#: Stripe's ``PaymentIntent.status`` values that are not an answer yet.
_UNSETTLED = {"processing", "requires_confirmation", "requires_capture"}


@cache
def script() -> tuple[bytes, str]:
    """The card form's adapter script (the project's own file) and its SRI hash."""
    content = (Path(__file__).parent / "stripe_assets" / "card.js").read_bytes()
    digest = base64.b64encode(hashlib.sha384(content).digest()).decode()
    return content, f"sha384-{digest}"


def stripe_client() -> stripe.StripeClient:
    """A client for the configured account and API address (``PRORATA_STRIPE_*``), with the
    configured timeout and no retries of its own: a call that does not answer in time is an
    unknown outcome that Prorata reconciles by its idempotency key."""
    secret = settings.PRORATA_STRIPE_SECRET_KEY
    if not secret:
        raise ImproperlyConfigured(
            "PRORATA_PAYMENT_GATEWAY=stripe needs PRORATA_STRIPE_SECRET_KEY (docs/settings.md)."
        )
    return stripe.StripeClient(
        secret,
        base_addresses={"api": settings.PRORATA_STRIPE_API_BASE},
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=settings.PRORATA_STRIPE_TIMEOUT),
    )


def split_token(token: str) -> tuple[str, str]:
    """``cus_…/pm_…`` (what Prorata keeps) → the customer and the PaymentMethod."""
    customer, _slash, method = str(token or "").partition("/")
    return customer, method


class StripeGateway:
    """The protocol on Stripe (see the module's docstring). Holds no state of its own: the
    attempts are rows, the rest is Stripe's."""

    def __init__(self, client: stripe.StripeClient | None = None) -> None:
        self._client = client or stripe_client()
        self._api = self._client.v1

    # --- the card form and saving a card ------------------------------------------------------

    def card_form(self, *, locale: str) -> CardForm:
        _content, integrity = script()
        return CardForm(script_url=f"{PREFIX}/card.js", integrity=integrity, options={
            "stripe_js": STRIPE_JS, "publishable_key": settings.PRORATA_STRIPE_PUBLISHABLE_KEY,
            "locale": locale})

    def payment_method_create(self, *, token: str, at: datetime) -> TokenizedCard:
        token = str(token or "").strip()[:255]
        if not token.startswith(("pm_", "tok_")):
            raise CardTokenInvalid(TOKEN_UNKNOWN, reason="unknown")
        # Keys derived from the token: the same token sent twice makes one customer and one
        # SetupIntent, and a token is single-use (Stripe refuses to attach a used PaymentMethod).
        digest = hashlib.sha256(token.encode()).hexdigest()[:32]
        try:
            method_id = token
            if token.startswith("tok_"):
                method = self._api.payment_methods.create(
                    params={"type": "card", "card": {"token": token}},
                    options={"idempotency_key": f"prorata:pm:{digest}:method"})
                method_id = method.id
            customer = self._api.customers.create(
                params={"description": "Prorata card", "metadata": {"prorata_card": digest}},
                options={"idempotency_key": f"prorata:pm:{digest}:customer"})
            setup = self._api.setup_intents.create(
                params={"customer": customer.id, "payment_method": method_id, "confirm": True,
                        "usage": "off_session", "payment_method_types": ["card"],
                        "expand": ["payment_method"]},
                options={"idempotency_key": f"prorata:pm:{digest}:setup"})
        except stripe.CardError as refused:
            logger.info("Stripe refused to save a card: %s", refused.code)
            raise CardRejected(CARD_NOT_SAVED, field="number") from refused
        except stripe.InvalidRequestError as refused:
            logger.info("Stripe does not know card token (%s)", refused.code)
            raise CardTokenInvalid(TOKEN_UNKNOWN, reason="unknown") from refused
        if setup.status not in ("succeeded", "requires_action", "processing"):
            raise CardRejected(CARD_NOT_SAVED, field="number")
        card = _field(setup.payment_method, "card") or {}
        return TokenizedCard(
            token=f"{customer.id}/{_field(setup.payment_method, 'id') or method_id}",
            brand=_brand(str(_field(card, "brand") or "")),
            last4=str(_field(card, "last4") or "")[-4:],
            exp_month=int(_field(card, "exp_month") or 1),
            exp_year=int(_field(card, "exp_year") or at.year),
        )

    # --- charges --------------------------------------------------------------------------------

    def charge(
        self, *, token: str, amount: Money, idempotency_key: str, description: str,
        off_session: bool = False, return_url: str = "",
    ) -> ChargeResult:
        _require_positive(amount, "charge")
        customer, method = split_token(token)
        attempt, first = _attempt_record(
            idempotency_key=idempotency_key, kind=StripeAttemptKind.CHARGE, customer=customer,
            payment_method=method, amount=amount)
        if (attempt.kind, attempt.customer, attempt.payment_method, attempt.amount,
                attempt.currency) != (StripeAttemptKind.CHARGE, customer, method, amount.amount,
                                      amount.currency):
            raise _reused(idempotency_key)
        if not first:
            # Sent before: read back what it made, never make a second one.
            try:
                intent = self._intent_of(attempt)
                if intent is not None:
                    return self._expired_or(attempt, intent)
            except stripe.StripeError as error:
                return _unknown(error, idempotency_key)
        if not customer or not method:
            return ChargeResult(ChargeOutcome.DECLINED, "", CARD_NOT_ON_FILE)
        params: dict[str, Any] = {
            "amount": amount.amount, "currency": amount.currency.lower(),
            "customer": customer, "payment_method": method, "confirm": True,
            "payment_method_types": ["card"], "description": description[:1000],
            "metadata": {METADATA_KEY: idempotency_key},
        }
        if off_session:
            params["off_session"] = True
        elif return_url:
            params["return_url"] = return_url
        try:
            intent = self._api.payment_intents.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key})
        except stripe.CardError as refused:
            intent = _field(refused.error, "payment_intent")
            if intent is not None:
                _attempt_answered(attempt.pk, str(_field(intent, "id") or ""))
                return _intent_result(intent, error=refused)
            return _card_error_result(refused, "")
        except stripe.IdempotencyError as reused:
            raise _reused(idempotency_key) from reused
        except stripe.InvalidRequestError as refused:
            logger.warning("Stripe refused charge %s: %s (%s)", idempotency_key,
                           refused.user_message, refused.code)
            message = CARD_NOT_ON_FILE if refused.code == "resource_missing" else REQUEST_REFUSED
            return ChargeResult(ChargeOutcome.DECLINED, "", message)
        except stripe.StripeError as error:
            return _unknown(error, idempotency_key)
        _attempt_answered(attempt.pk, intent.id)
        return _intent_result(intent)

    # --- refunds --------------------------------------------------------------------------------

    def refund(self, *, reference: str, amount: Money, idempotency_key: str) -> ChargeResult:
        _require_positive(amount, "refund")
        attempt, first = _attempt_record(
            idempotency_key=idempotency_key, kind=StripeAttemptKind.REFUND,
            refunded_intent=reference, amount=amount)
        if (attempt.kind, attempt.refunded_intent, attempt.amount, attempt.currency) != (
                StripeAttemptKind.REFUND, reference, amount.amount, amount.currency):
            raise _reused(idempotency_key)
        if not first:
            try:
                found = self._refund_of(attempt)
            except stripe.StripeError as error:
                return _unknown(error, idempotency_key)
            if found is not None:
                return _refund_result(found)
        try:
            made = self._api.refunds.create(
                params={"payment_intent": reference, "amount": amount.amount,
                        "metadata": {METADATA_KEY: idempotency_key}},
                options={"idempotency_key": idempotency_key})
        except stripe.IdempotencyError as reused:
            raise _reused(idempotency_key) from reused
        except (stripe.InvalidRequestError, stripe.CardError) as refused:
            logger.warning("Stripe refused refund %s: %s (%s)", idempotency_key,
                           refused.user_message, refused.code)
            return ChargeResult(ChargeOutcome.DECLINED, "", NOTHING_TO_REFUND)
        except stripe.StripeError as error:
            return _unknown(error, idempotency_key)
        _attempt_answered(attempt.pk, made.id)
        return _refund_result(made)

    # --- lookup ---------------------------------------------------------------------------------

    def lookup(self, *, idempotency_key: str) -> ChargeResult | None:
        """What became of the attempt sent with ``idempotency_key`` (its current state at
        Stripe); ``None`` when Stripe never saw it. A Stripe that does not answer raises (the
        callers treat that as "not known yet", never as "not received")."""
        attempt = StripeAttempt.objects.filter(idempotency_key=idempotency_key).first()
        if attempt is None:
            return None  # recorded before sending: without a row the request never left
        if attempt.kind == StripeAttemptKind.REFUND:
            found = self._refund_of(attempt)
            return _refund_result(found) if found is not None else None
        intent = self._intent_of(attempt)
        return self._expired_or(attempt, intent) if intent is not None else None

    def _expired_or(self, attempt: StripeAttempt, intent: Any) -> ChargeResult:
        """``intent``'s outcome; one still awaiting authentication after
        :data:`AUTHENTICATION_MINUTES` is cancelled first (``abandoned``) and answered declined.
        If Stripe refuses the cancel (it succeeded meanwhile), its new state is the answer."""
        if (str(_field(intent, "status") or "") != "requires_action"
                or attempt.created_at + timedelta(minutes=AUTHENTICATION_MINUTES) > now()):
            return _intent_result(intent)
        try:
            cancelled = self._api.payment_intents.cancel(
                str(intent.id), params={"cancellation_reason": "abandoned"},
                options={"idempotency_key": f"{attempt.idempotency_key}:cancel"})
        except stripe.InvalidRequestError:
            return _intent_result(self._api.payment_intents.retrieve(str(intent.id)))
        if str(_field(cancelled, "status") or "") == "canceled":
            return ChargeResult(ChargeOutcome.DECLINED, str(intent.id), AUTHENTICATION_EXPIRED)
        return _intent_result(cancelled)

    def _intent_of(self, attempt: StripeAttempt) -> Any:
        """The PaymentIntent ``attempt`` made, or ``None`` if Stripe has none with its key."""
        if attempt.stripe_id:
            return self._api.payment_intents.retrieve(attempt.stripe_id)
        if not attempt.customer:
            return None
        page = self._api.payment_intents.list(params={"customer": attempt.customer, "limit": 100})
        for seen, intent in enumerate(page.auto_paging_iter()):
            if seen >= LIST_LIMIT:
                break
            if _field(_field(intent, "metadata"), METADATA_KEY) == attempt.idempotency_key:
                _attempt_answered(attempt.pk, intent.id)
                return intent
        return None

    def _refund_of(self, attempt: StripeAttempt) -> Any:
        if attempt.stripe_id:
            return self._api.refunds.retrieve(attempt.stripe_id)
        page = self._api.refunds.list(params={"payment_intent": attempt.refunded_intent,
                                              "limit": 100})
        for refund in page.auto_paging_iter():
            if _field(_field(refund, "metadata"), METADATA_KEY) == attempt.idempotency_key:
                _attempt_answered(attempt.pk, refund.id)
                return refund
        return None


# --- Stripe's answers as outcomes ---------------------------------------------------------------

def _intent_result(intent: Any, *, error: stripe.CardError | None = None) -> ChargeResult:
    """A PaymentIntent's state as the protocol's outcome (``error``: the card error that came
    with it, when Stripe answered the create with one)."""
    reference = str(_field(intent, "id") or "")
    status = str(_field(intent, "status") or "")
    if status == "succeeded":
        return ChargeResult(ChargeOutcome.SUCCEEDED, reference,
                            OUTCOME_MESSAGES[ChargeOutcome.SUCCEEDED])
    if status == "requires_action":
        action = _field(intent, "next_action") or {}
        url = ""
        if _field(action, "type") == "redirect_to_url":
            url = str(_field(_field(action, "redirect_to_url") or {}, "url") or "")
        return ChargeResult(ChargeOutcome.REQUIRES_ACTION, reference,
                            OUTCOME_MESSAGES[ChargeOutcome.REQUIRES_ACTION], url)
    if status in _UNSETTLED:
        return ChargeResult(ChargeOutcome.UNKNOWN, reference,
                            OUTCOME_MESSAGES[ChargeOutcome.UNKNOWN])
    # requires_payment_method (the last attempt failed) or canceled: a definite refusal.
    failure = _field(intent, "last_payment_error") or (error.error if error else None) or {}
    return _failure_result(str(_field(failure, "code") or ""),
                           str(_field(failure, "decline_code") or ""), reference)


def _card_error_result(error: stripe.CardError, reference: str) -> ChargeResult:
    return _failure_result(str(error.code or ""),
                           str(_field(error.error, "decline_code") or ""), reference)


def _failure_result(code: str, decline_code: str, reference: str) -> ChargeResult:
    if code == "authentication_required":
        # Off session: nobody to authenticate now; the customer is asked to come and pay.
        return ChargeResult(ChargeOutcome.REQUIRES_ACTION, reference,
                            OUTCOME_MESSAGES[ChargeOutcome.REQUIRES_ACTION])
    if code == "payment_intent_authentication_failure":
        return ChargeResult(ChargeOutcome.DECLINED, reference, AUTHENTICATION_FAILED)
    if "insufficient_funds" in (code, decline_code):
        return ChargeResult(ChargeOutcome.INSUFFICIENT_FUNDS, reference,
                            OUTCOME_MESSAGES[ChargeOutcome.INSUFFICIENT_FUNDS])
    return ChargeResult(ChargeOutcome.DECLINED, reference,
                        OUTCOME_MESSAGES[ChargeOutcome.DECLINED])


def _refund_result(refund: Any) -> ChargeResult:
    reference = str(_field(refund, "id") or "")
    status = str(_field(refund, "status") or "")
    if status == "succeeded":
        return ChargeResult(ChargeOutcome.SUCCEEDED, reference, REFUND_DONE)
    if status in ("pending", "requires_action"):
        return ChargeResult(ChargeOutcome.UNKNOWN, reference, REFUND_UNCONFIRMED)
    return ChargeResult(ChargeOutcome.DECLINED, reference, NOTHING_TO_REFUND)


def _unknown(error: stripe.StripeError, key: str) -> ChargeResult:
    """No answer (a timeout, a lost connection, a 5xx, a 429; or the keys refused, which a
    system check prevents): maybe done, never sent again under another key."""
    level = (logging.ERROR if isinstance(error, (stripe.AuthenticationError,
                                                 stripe.PermissionError)) else logging.WARNING)
    logger.log(level, "Stripe did not answer %s: %s (%s)", key, type(error).__name__,
               error.http_status)
    return ChargeResult(ChargeOutcome.UNKNOWN, "", OUTCOME_MESSAGES[ChargeOutcome.UNKNOWN])


def _field(obj: Any, name: str) -> Any:
    """A field of a Stripe object or of a plain dict (an error's payload), ``None`` if absent."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    try:
        return obj[name]  # a StripeObject (not a dict since stripe 13): KeyError when absent
    except (KeyError, TypeError, IndexError):
        return getattr(obj, name, None)


_BRANDS = {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express",
           "discover": "Discover", "diners": "Diners Club", "jcb": "JCB",
           "unionpay": "UnionPay", "cartes_bancaires": "Cartes Bancaires"}


def _brand(code: str) -> str:
    return _BRANDS.get(code.lower(), "Card")


# --- the attempts' records ----------------------------------------------------------------------

@retry_transient(attempts=JOB_ATTEMPTS)
def _attempt_record(
    *, idempotency_key: str, kind: str, amount: Money, customer: str = "",
    payment_method: str = "", refunded_intent: str = "",
) -> tuple[StripeAttempt, bool]:
    """The attempt's row, written before its request leaves (its own transaction); ``True`` when
    it is new (first sent now)."""
    found = StripeAttempt.objects.filter(idempotency_key=idempotency_key).first()
    if found is not None:
        return found, False
    try:
        with transaction.atomic():
            return StripeAttempt.objects.create(
                idempotency_key=idempotency_key, kind=kind, customer=customer,
                payment_method=payment_method, refunded_intent=refunded_intent,
                amount=amount.amount, currency=amount.currency, created_at=now()), True
    except IntegrityError:
        # Another process sends the same key at this moment: Stripe's idempotency answers both.
        return StripeAttempt.objects.get(idempotency_key=idempotency_key), True


@retry_transient(attempts=JOB_ATTEMPTS)
def _attempt_answered(attempt_id: int, stripe_id: str) -> None:
    if stripe_id:
        StripeAttempt.objects.filter(pk=attempt_id, stripe_id="").update(stripe_id=stripe_id)


def _require_positive(amount: Money, what: str) -> None:
    if amount.amount <= 0:
        raise InvalidAmount(
            f"A {what} is for an amount above zero, not {amount}.", amount=str(amount)
        )


def _reused(key: str) -> IdempotencyKeyReused:
    return IdempotencyKeyReused(
        f"The idempotency key {key!r} was already used for another payment; "
        "use a new key for a new payment.",
        idempotency_key=key,
    )
