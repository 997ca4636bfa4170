"""The built-in, offline payment gateway: a card form, tokens, charges, 3-D Secure challenges and
refunds kept in the database.

It behaves as a provider does from its own host: its pages and its tokenisation endpoint are served
under ``/sandbox-gateway/`` (:mod:`prorata.payments.sandbox_views`), never by Prorata's views. The
card form (a frame started by the pinned script ``/sandbox-gateway/v1/gateway.js``) posts the card
to ``/sandbox-gateway/v1/tokens``, which answers a single-use token (:func:`card_token`); Prorata
exchanges it once for a reusable payment method (:meth:`SandboxGateway.payment_method_create`).

Test cards (spaces and dashes accepted; any expiry in the future, any 3-digit security code, 4 digits
for American Express):

============================  ==============================================================
``4242 4242 4242 4242``        charges succeed
``4000 0000 0000 0002``        charges are declined
``4000 0000 0000 9995``        charges fail for insufficient funds
``4000 0000 0000 0119``        charges time out: ``charge`` answers unknown, the card *is* charged,
                               ``lookup`` (and a replay of the same key) answer succeeded
``4000 0027 6000 3184``        every charge requires 3-D Secure: with the customer present, the
                               answer is ``requires_action`` and a challenge page (approve / fail,
                               expires after :data:`CHALLENGE_MINUTES` minutes); off session
                               (a renewal), ``requires_action`` with no page
any other Luhn-valid number    charges succeed
============================  ==============================================================

The sandbox never stores a card number: a card row records the brand, the last four digits, the
expiry and which test behaviour it has (:class:`~prorata.payments.models.SandboxCard`). Charges and
refunds are rows keyed by their idempotency key (unique in the database), so a replay from any
process returns the first answer and moves money once.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_noop

from prorata.common.cardnumbers import luhn_valid  # re-exported: the card form checks it
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
from prorata.payments.models import SandboxBehaviour, SandboxCard, SandboxCharge, SandboxRefund
from prorata_core.errors import InvalidAmount
from prorata_core.money import Money

#: Test card numbers (digits only) → behaviour; any other valid number succeeds.
TEST_CARDS: dict[str, SandboxBehaviour] = {
    "4242424242424242": SandboxBehaviour.SUCCEED,
    "4000000000000002": SandboxBehaviour.DECLINE,
    "4000000000009995": SandboxBehaviour.INSUFFICIENT_FUNDS,
    "4000000000000119": SandboxBehaviour.UNKNOWN_THEN_SUCCEEDED,
    "4000002760003184": SandboxBehaviour.AUTHENTICATE,
}

_OUTCOME_OF: dict[str, ChargeOutcome] = {
    SandboxBehaviour.SUCCEED: ChargeOutcome.SUCCEEDED,
    SandboxBehaviour.DECLINE: ChargeOutcome.DECLINED,
    SandboxBehaviour.INSUFFICIENT_FUNDS: ChargeOutcome.INSUFFICIENT_FUNDS,
    SandboxBehaviour.UNKNOWN_THEN_SUCCEEDED: ChargeOutcome.SUCCEEDED,
    SandboxBehaviour.AUTHENTICATE: ChargeOutcome.REQUIRES_ACTION,
}

#: The URL prefix of the sandbox's pages, as a provider's host would be.
PREFIX = "/sandbox-gateway/v1"
#: How long a single-use token from the card form can be exchanged (project clock).
TOKEN_MINUTES = 60
#: How long a 3-D Secure challenge can be answered (project clock); then it is declined.
CHALLENGE_MINUTES = 10

CARD_NOT_ON_FILE = gettext_noop("This card is no longer on file. Add it again or use another card.")
NOTHING_TO_REFUND = gettext_noop(
    "This payment cannot be refunded: it does not exist or did not succeed."
)
REFUND_TOO_LARGE = gettext_noop("The refund is larger than what is left to refund on this payment.")
REFUND_DONE = gettext_noop("Refund issued.")
AUTHENTICATION_FAILED = gettext_noop(
    "Your bank could not authenticate this payment, so nothing was charged. Try again or use "
    "another card."
)
AUTHENTICATION_EXPIRED = gettext_noop(
    "The authentication with your bank was not completed in time, so nothing was charged. Try "
    "again."
)
TOKEN_UNKNOWN = gettext_noop(
    "These card details are not known to the payment provider: type the card again."
)
TOKEN_USED = gettext_noop(
    "These card details were already used once: type the card again to use it."
)
TOKEN_EXPIRED = gettext_noop(
    "These card details were typed too long ago: type the card again."
)

_SEPARATORS = re.compile(r"[\s\-]")


@dataclass(frozen=True)
class CardDetails:
    """Card details as typed into the sandbox's card form; kept in memory only, never stored or
    logged. ``number`` may contain spaces and dashes. ``exp_year`` is four digits (two are read
    as 20YY). Only the sandbox's tokenisation endpoint (and tests) make one."""

    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str = field(repr=False)


def card_brand(digits: str) -> str:
    """The card network of a number, from its first digits (display name)."""
    if digits.startswith("4"):
        return "Visa"
    if digits[:2] in {"34", "37"}:
        return "American Express"
    if "51" <= digits[:2] <= "55" or "2221" <= digits[:4] <= "2720":
        return "Mastercard"
    if digits.startswith(("6011", "65")) or "644" <= digits[:3] <= "649":
        return "Discover"
    return "Card"


def check_card(card: CardDetails, at: datetime) -> tuple[str, int]:
    """The card's digits and four-digit expiry year, or :class:`CardRejected` saying what to fix."""
    digits = _SEPARATORS.sub("", card.number or "")
    # ASCII only: "²" is a digit to isdigit() and not to int() (a 500), "٤" is read as 4.
    if (not digits.isascii() or not digits.isdigit() or not 12 <= len(digits) <= 19
            or not luhn_valid(digits)):
        raise CardRejected(
            "This card number is not valid: check the digits and type it again.", field="number"
        )
    exp_year = card.exp_year + 2000 if 0 <= card.exp_year < 100 else card.exp_year
    if not 1 <= card.exp_month <= 12:
        raise CardRejected(
            f"{card.exp_month} is not a month: give the expiry month as a number from 1 to 12.",
            field="expiry",
        )
    if (exp_year, card.exp_month) < (at.year, at.month):
        raise CardRejected(
            f"This card expired at the end of {card.exp_month:02d}/{exp_year}: "
            "use a card that is still valid.",
            field="expiry",
        )
    brand = card_brand(digits)
    cvc_length = 4 if brand == "American Express" else 3
    cvc = card.cvc or ""
    if not (cvc.isascii() and cvc.isdigit()) or len(cvc) != cvc_length:
        raise CardRejected(
            f"The security code must be the {cvc_length} digits "
            + ("on the front of the card." if cvc_length == 4 else "on the back of the card."),
            field="cvc",
        )
    return digits, exp_year


def card_token(card: CardDetails, at: datetime) -> str:
    """The sandbox's tokenisation (its endpoint ``POST /sandbox-gateway/v1/tokens``): check the
    card, keep its brand, last four digits, expiry and test behaviour, and answer a single-use
    token for the page to send to Prorata instead of the card. :class:`CardRejected` (its
    ``field``: ``number``, ``expiry`` or ``cvc``) for details that cannot be a card."""
    digits, exp_year = check_card(card, at)
    saved = SandboxCard.objects.create(
        token=f"pm_sandbox_{secrets.token_hex(12)}",
        single_use_token=f"tok_sandbox_{secrets.token_hex(12)}",
        brand=card_brand(digits), last4=digits[-4:], exp_month=card.exp_month,
        exp_year=exp_year, behaviour=TEST_CARDS.get(digits, SandboxBehaviour.SUCCEED),
        created_at=at,
    )
    return saved.single_use_token or ""


def sandbox_token(number: str = "4242 4242 4242 4242", *, exp_month: int = 12, exp_year: int = 2030,
               cvc: str = "123") -> str:
    """A single-use token for a test card, as the card form would get it (demo data, tests)."""
    return card_token(CardDetails(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc),
                      now())


@cache
def script() -> tuple[bytes, str]:
    """The card form's script (pinned: it is the project's own file) and its SRI hash."""
    content = (Path(__file__).parent / "sandbox_assets" / "gateway.js").read_bytes()
    digest = base64.b64encode(hashlib.sha384(content).digest()).decode()
    return content, f"sha384-{digest}"


@retry_transient(attempts=JOB_ATTEMPTS)
def _charge_record(**fields: object) -> SandboxCharge:
    """The sandbox's own record of a charge, in its own transaction: a charge beside a busy
    database (SQLite's single writer) waits its turn, as long as a batch job would, rather than
    failing as if the bank had not answered."""
    with transaction.atomic():
        return SandboxCharge.objects.create(**fields)


class SandboxGateway:
    """The offline gateway (see the module's docstring). Stateless: every fact is in the database."""

    #: A behaviour that overrides the card's for the next first charge of a key (the fault modes
    #: of :class:`prorata.payments.sandbox_faults.FaultySandboxGateway`); ``None``: the card's.
    _forced: SandboxBehaviour | None = None

    def card_form(self, *, locale: str) -> CardForm:
        _content, integrity = script()
        return CardForm(script_url=f"{PREFIX}/gateway.js", integrity=integrity,
                        options={"frame": f"{PREFIX}/card-form", "locale": locale})

    def payment_method_create(self, *, token: str, at: datetime) -> TokenizedCard:
        with transaction.atomic():
            card = (SandboxCard.objects.select_for_update()
                    .filter(single_use_token=str(token or "")[:64]).first())
            if card is None or not token:
                raise CardTokenInvalid(TOKEN_UNKNOWN, reason="unknown")
            if card.attached_at is not None:
                raise CardTokenInvalid(TOKEN_USED, reason="used")
            if card.created_at + timedelta(minutes=TOKEN_MINUTES) < at:
                raise CardTokenInvalid(TOKEN_EXPIRED, reason="expired")
            card.attached_at = at
            card.save(update_fields=["attached_at"])
        return TokenizedCard(token=card.token, brand=card.brand, last4=card.last4,
                             exp_month=card.exp_month, exp_year=card.exp_year)

    def charge(
        self, *, token: str, amount: Money, idempotency_key: str, description: str,
        off_session: bool = False, return_url: str = "",
    ) -> ChargeResult:
        _require_positive(amount, "charge")
        replay = SandboxCharge.objects.filter(idempotency_key=idempotency_key).first()
        if replay is None:
            card = SandboxCard.objects.filter(token=token).first()
            behaviour = (self._forced or card.behaviour) if card is not None else None
            outcome = _OUTCOME_OF[behaviour] if behaviour is not None else ChargeOutcome.DECLINED
            first_answer = (
                ChargeOutcome.UNKNOWN
                if behaviour == SandboxBehaviour.UNKNOWN_THEN_SUCCEEDED
                else outcome
            )
            challenge = outcome == ChargeOutcome.REQUIRES_ACTION and not off_session
            try:
                created = _charge_record(
                    idempotency_key=idempotency_key, reference=_reference("ch"), token=token,
                    amount=amount.amount, currency=amount.currency,
                    description=description[:500], outcome=outcome,
                    first_answer=first_answer, off_session=off_session, created_at=now(),
                    action_secret=secrets.token_urlsafe(24) if challenge else None,
                    action_expires_at=(now() + timedelta(minutes=CHALLENGE_MINUTES)
                                       if challenge else None),
                    return_url=return_url[:1000] if challenge else "",
                )
            except IntegrityError:
                # Another process sent the same key at the same time: its row is the answer.
                replay = SandboxCharge.objects.get(idempotency_key=idempotency_key)
            else:
                if card is None:
                    return ChargeResult(ChargeOutcome.DECLINED, created.reference, CARD_NOT_ON_FILE)
                return _charge_result(created, ChargeOutcome(first_answer))
        if (replay.token, replay.amount, replay.currency) != (token, amount.amount, amount.currency):
            raise _reused(idempotency_key)
        return _charge_result(_expire(replay), ChargeOutcome(replay.outcome))

    def refund(self, *, reference: str, amount: Money, idempotency_key: str) -> ChargeResult:
        _require_positive(amount, "refund")
        replay = SandboxRefund.objects.filter(idempotency_key=idempotency_key).first()
        if replay is None:
            try:
                with transaction.atomic():
                    replay = self._refund_once(reference, amount, idempotency_key)
            except IntegrityError:
                replay = SandboxRefund.objects.get(idempotency_key=idempotency_key)
        if (replay.charge_reference, replay.amount, replay.currency) != (
            reference, amount.amount, amount.currency
        ):
            raise _reused(idempotency_key)
        return ChargeResult(ChargeOutcome(replay.outcome), replay.reference, replay.message)

    def _refund_once(self, reference: str, amount: Money, idempotency_key: str) -> SandboxRefund:
        # The charge row is locked so that two refunds of one payment cannot both pass the check.
        charge = (
            SandboxCharge.objects.select_for_update()
            .filter(reference=reference, outcome=ChargeOutcome.SUCCEEDED).first()
        )
        if charge is None or charge.currency != amount.currency:
            outcome, message = ChargeOutcome.DECLINED, NOTHING_TO_REFUND
        else:
            refunded = sum(
                SandboxRefund.objects.filter(
                    charge_reference=reference, outcome=ChargeOutcome.SUCCEEDED
                ).values_list("amount", flat=True)
            )
            if refunded + amount.amount > charge.amount:
                outcome, message = ChargeOutcome.DECLINED, REFUND_TOO_LARGE
            else:
                outcome, message = ChargeOutcome.SUCCEEDED, REFUND_DONE
        return SandboxRefund.objects.create(
            idempotency_key=idempotency_key, reference=_reference("re"),
            charge_reference=reference, amount=amount.amount, currency=amount.currency,
            outcome=outcome, message=message, created_at=now(),
        )

    def lookup(self, *, idempotency_key: str) -> ChargeResult | None:
        charge = SandboxCharge.objects.filter(idempotency_key=idempotency_key).first()
        if charge is not None:
            charge = _expire(charge)
            return _charge_result(charge, ChargeOutcome(charge.outcome))
        refund = SandboxRefund.objects.filter(idempotency_key=idempotency_key).first()
        if refund is not None:
            return ChargeResult(ChargeOutcome(refund.outcome), refund.reference, refund.message)
        return None


# --- 3-D Secure challenges (the sandbox's page: sandbox_views.challenge) ----------------------------

def challenge_find(secret: str) -> SandboxCharge | None:
    """The charge a challenge page is for (expired ones answered as declined), or ``None``."""
    charge = SandboxCharge.objects.filter(action_secret=str(secret or "")[:64]).first()
    return _expire(charge) if charge is not None else None


def challenge_answer(secret: str, *, approve: bool) -> SandboxCharge | None:
    """The customer's answer on the challenge page: approved, the charge succeeds (the card is
    charged now); failed, it is declined. An expired or already answered challenge keeps its
    outcome. ``None`` for an unknown secret."""
    with transaction.atomic():
        charge = (SandboxCharge.objects.select_for_update()
                  .filter(action_secret=str(secret or "")[:64]).first())
        if charge is None:
            return None
        charge = _expire(charge)
        if charge.outcome == ChargeOutcome.REQUIRES_ACTION:
            charge.outcome = ChargeOutcome.SUCCEEDED if approve else ChargeOutcome.DECLINED
            charge.message = "" if approve else AUTHENTICATION_FAILED
            charge.save(update_fields=["outcome", "message"])
    return charge


def _expire(charge: SandboxCharge) -> SandboxCharge:
    """A challenge left unanswered past its end is declined (as a bank times it out)."""
    if (charge.outcome == ChargeOutcome.REQUIRES_ACTION and charge.action_expires_at is not None
            and charge.action_expires_at <= now()):
        SandboxCharge.objects.filter(pk=charge.pk, outcome=ChargeOutcome.REQUIRES_ACTION).update(
            outcome=ChargeOutcome.DECLINED, message=AUTHENTICATION_EXPIRED)
        charge.refresh_from_db()
    return charge


def _charge_result(charge: SandboxCharge, outcome: ChargeOutcome) -> ChargeResult:
    if outcome == ChargeOutcome.DECLINED and not SandboxCard.objects.filter(
        token=charge.token
    ).exists():
        return ChargeResult(outcome, charge.reference, CARD_NOT_ON_FILE)
    if outcome == ChargeOutcome.DECLINED and charge.message:
        return ChargeResult(outcome, charge.reference, charge.message)
    action_url = (f"{PREFIX}/challenge/{charge.action_secret}"
                  if outcome == ChargeOutcome.REQUIRES_ACTION and charge.action_secret else "")
    return ChargeResult(outcome, charge.reference, OUTCOME_MESSAGES[outcome], action_url)


def _reference(prefix: str) -> str:
    return f"{prefix}_sandbox_{secrets.token_hex(12)}"


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
