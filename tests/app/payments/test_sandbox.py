"""The built-in sandbox gateway: test cards, refusals, idempotent charges, refunds, reconciliation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from prorata.payments.errors import CardRejected, IdempotencyKeyReused
from prorata.payments.gateway import (
    ChargeOutcome,
    ChargeResult,
    Gateway,
    TokenizedCard,
    get_gateway,
)
from prorata.payments.models import SandboxCard, SandboxCharge, SandboxRefund
from prorata.payments.sandbox import CardDetails, SandboxGateway, card_token, luhn_valid
from prorata_core.errors import InvalidAmount
from prorata_core.money import Money
from tests.app.payments import fakes

pytestmark = pytest.mark.django_db

AT = datetime(2026, 3, 11, tzinfo=UTC)
EUR_25 = Money(2555, "EUR")


def tokenize(sandbox: SandboxGateway, details: CardDetails, at: datetime) -> TokenizedCard:
    """The card form's token for ``details``, exchanged for a payment method (as Prorata does)."""
    return sandbox.payment_method_create(token=card_token(details, at), at=at)


def card(number: str, exp_month: int = 12, exp_year: int = 2030, cvc: str = "123") -> CardDetails:
    return CardDetails(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc)


@pytest.fixture
def sandbox(clock) -> SandboxGateway:
    return SandboxGateway()


@pytest.mark.parametrize(
    ("number", "outcome", "message"),
    [
        ("4242 4242 4242 4242", ChargeOutcome.SUCCEEDED, "Payment accepted."),
        ("4000 0000 0000 0002", ChargeOutcome.DECLINED, "Your card was declined. Use another card."),
        ("4000-0000-0000-9995", ChargeOutcome.INSUFFICIENT_FUNDS,
         "Your card has insufficient funds. Use another card."),
        ("5555555555554444", ChargeOutcome.SUCCEEDED, "Payment accepted."),
    ],
)
def test_each_test_card_charges_with_its_outcome(sandbox, number, outcome, message):
    token = tokenize(sandbox, card(number), at=AT).token
    result = sandbox.charge(token=token, amount=EUR_25, idempotency_key="k1", description="Lite")
    assert (result.outcome, result.message) == (outcome, message)
    assert result.reference.startswith("ch_sandbox_")
    assert result.succeeded is (outcome == ChargeOutcome.SUCCEEDED)


def test_tokenizing_keeps_brand_last_four_and_expiry_only(sandbox):
    tokenized = tokenize(sandbox, card("4242 4242 4242 4242", 7, 30, "123"), at=AT)
    assert (tokenized.brand, tokenized.last4, tokenized.exp_month, tokenized.exp_year) == (
        "Visa", "4242", 7, 2030
    )
    amex = tokenize(sandbox, card("3782 822463 10005", cvc="1234"), at=AT)
    master = tokenize(sandbox, card("5555 5555 5555 4444"), at=AT)
    assert (amex.brand, amex.last4, master.brand) == ("American Express", "0005", "Mastercard")
    row = SandboxCard.objects.get(token=tokenized.token)
    assert (row.behaviour, row.last4) == ("succeed", "4242")


@pytest.mark.parametrize(
    ("details", "field", "message"),
    [
        (card("4242 4242 4242 4241"), "number",
         "This card number is not valid: check the digits and type it again."),
        (card("4242 4242 42x2 4242"), "number",
         "This card number is not valid: check the digits and type it again."),
        (card("4242"), "number", "This card number is not valid: check the digits and type it again."),
        (card("4242424242424242", exp_month=2, exp_year=2026), "expiry",
         "This card expired at the end of 02/2026: use a card that is still valid."),
        (card("4242424242424242", exp_month=13), "expiry",
         "13 is not a month: give the expiry month as a number from 1 to 12."),
        (card("4242424242424242", cvc="12"), "cvc",
         "The security code must be the 3 digits on the back of the card."),
        (card("4242424242424242", cvc="12a"), "cvc",
         "The security code must be the 3 digits on the back of the card."),
        (card("378282246310005", cvc="123"), "cvc",
         "The security code must be the 4 digits on the front of the card."),
    ],
)
def test_bad_card_details_are_refused_with_what_to_fix_and_nothing_is_kept(
    sandbox, details, field, message
):
    with pytest.raises(CardRejected) as refused:
        tokenize(sandbox, details, at=AT)
    assert (refused.value.code, refused.value.message) == ("card_rejected", message)
    assert refused.value.params["field"] == field
    assert refused.value.http_status == 422
    assert SandboxCard.objects.count() == 0


def test_a_card_is_valid_through_the_last_day_of_its_expiry_month(sandbox):
    last_day = datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC)
    assert tokenize(sandbox, card("4242424242424242", 3, 2026), at=last_day).exp_year == 2026
    with pytest.raises(CardRejected):
        tokenize(sandbox, card("4242424242424242", 3, 2026),
                         at=datetime(2026, 4, 1, tzinfo=UTC))


def test_the_same_idempotency_key_charges_once_and_answers_the_same(sandbox):
    token = tokenize(sandbox, card("4242424242424242"), at=AT).token
    first = sandbox.charge(token=token, amount=EUR_25, idempotency_key="order-1", description="x")
    again = sandbox.charge(token=token, amount=EUR_25, idempotency_key="order-1", description="x")
    assert first == again
    assert SandboxCharge.objects.count() == 1
    other = sandbox.charge(token=token, amount=EUR_25, idempotency_key="order-2", description="x")
    assert other.reference != first.reference
    assert SandboxCharge.objects.count() == 2


def test_a_declined_charge_replays_as_declined(sandbox):
    token = tokenize(sandbox, card("4000000000000002"), at=AT).token
    first = sandbox.charge(token=token, amount=EUR_25, idempotency_key="k", description="x")
    assert sandbox.charge(token=token, amount=EUR_25, idempotency_key="k", description="x") == first
    assert first.outcome == ChargeOutcome.DECLINED
    assert SandboxCharge.objects.count() == 1


def test_reusing_a_key_for_another_payment_is_refused(sandbox):
    token = tokenize(sandbox, card("4242424242424242"), at=AT).token
    sandbox.charge(token=token, amount=EUR_25, idempotency_key="k", description="x")
    with pytest.raises(IdempotencyKeyReused) as refused:
        sandbox.charge(token=token, amount=Money(2556, "EUR"), idempotency_key="k", description="x")
    assert refused.value.http_status == 409
    assert "already used for another payment" in refused.value.message
    assert SandboxCharge.objects.count() == 1


def test_a_timed_out_charge_is_unknown_then_reconciled_as_succeeded(sandbox):
    token = tokenize(sandbox, card("4000 0000 0000 0119"), at=AT).token
    first = sandbox.charge(token=token, amount=EUR_25, idempotency_key="k", description="x")
    assert first.outcome == ChargeOutcome.UNKNOWN
    assert first.message.startswith("We could not confirm the payment with your bank.")
    found = sandbox.lookup(idempotency_key="k")
    assert found == ChargeResult(ChargeOutcome.SUCCEEDED, first.reference, "Payment accepted.")
    # a retry with the same key learns the true outcome and charges nothing more
    assert sandbox.charge(token=token, amount=EUR_25, idempotency_key="k", description="x") == found
    assert SandboxCharge.objects.count() == 1


def test_lookup_of_a_key_never_sent_is_none(sandbox):
    assert sandbox.lookup(idempotency_key="never-sent") is None


def test_charging_a_token_the_gateway_does_not_know_is_declined(sandbox):
    result = sandbox.charge(token="tok_gone", amount=EUR_25, idempotency_key="k", description="x")
    assert (result.outcome, result.message) == (
        ChargeOutcome.DECLINED, "This card is no longer on file. Add it again or use another card."
    )
    assert sandbox.lookup(idempotency_key="k") == result


def test_amounts_must_be_above_zero(sandbox):
    token = tokenize(sandbox, card("4242424242424242"), at=AT).token
    with pytest.raises(InvalidAmount):
        sandbox.charge(token=token, amount=Money(0, "EUR"), idempotency_key="k", description="x")
    with pytest.raises(InvalidAmount):
        sandbox.refund(reference="ch_x", amount=Money(-1, "EUR"), idempotency_key="r")
    assert SandboxCharge.objects.count() == SandboxRefund.objects.count() == 0


def test_refunds_give_back_at_most_what_was_charged_once_per_key(sandbox):
    token = tokenize(sandbox, card("4242424242424242"), at=AT).token
    charge = sandbox.charge(token=token, amount=Money(10000, "EUR"), idempotency_key="c",
                            description="x")
    part = sandbox.refund(reference=charge.reference, amount=Money(6000, "EUR"),
                          idempotency_key="r1")
    assert (part.outcome, part.message) == (ChargeOutcome.SUCCEEDED, "Refund issued.")
    assert part.reference.startswith("re_sandbox_")
    assert sandbox.refund(reference=charge.reference, amount=Money(6000, "EUR"),
                          idempotency_key="r1") == part
    too_much = sandbox.refund(reference=charge.reference, amount=Money(4001, "EUR"),
                              idempotency_key="r2")
    assert (too_much.outcome, too_much.message) == (
        ChargeOutcome.DECLINED, "The refund is larger than what is left to refund on this payment."
    )
    rest = sandbox.refund(reference=charge.reference, amount=Money(4000, "EUR"),
                          idempotency_key="r3")
    assert rest.outcome == ChargeOutcome.SUCCEEDED
    assert sandbox.lookup(idempotency_key="r3") == rest
    assert sorted(SandboxRefund.objects.values_list("amount", "outcome")) == [
        (4000, "succeeded"), (4001, "declined"), (6000, "succeeded")
    ]
    with pytest.raises(IdempotencyKeyReused):
        sandbox.refund(reference=charge.reference, amount=Money(1, "EUR"), idempotency_key="r3")


def test_a_declined_or_unknown_charge_cannot_be_refunded(sandbox):
    token = tokenize(sandbox, card("4000000000000002"), at=AT).token
    declined = sandbox.charge(token=token, amount=EUR_25, idempotency_key="c", description="x")
    for reference in (declined.reference, "ch_does_not_exist"):
        result = sandbox.refund(reference=reference, amount=EUR_25, idempotency_key=reference)
        assert (result.outcome, result.message) == (
            ChargeOutcome.DECLINED,
            "This payment cannot be refunded: it does not exist or did not succeed.",
        )


def test_get_gateway_is_the_sandbox_unless_settings_name_another(settings, clock):
    assert isinstance(get_gateway(), SandboxGateway)
    assert isinstance(get_gateway(), Gateway)
    settings.PRORATA_PAYMENT_GATEWAY = "tests.app.payments.fakes.shared_fake"
    assert get_gateway() is fakes.SHARED
    assert isinstance(fakes.SHARED, Gateway)


def test_card_details_never_show_the_number_or_code_in_logs():
    shown = repr(card("4242 4242 4242 4242", cvc="987"))
    assert "4242" not in shown and "987" not in shown
    assert "exp_month=12" in shown


def test_luhn():
    assert luhn_valid("4242424242424242") and luhn_valid("79927398713")
    assert not luhn_valid("4242424242424241")
