"""The Stripe gateway (prorata.payments.stripe_gateway) against the local fake Stripe server: every
request it sends is read back from the fake's record (path, form parameters, Idempotency-Key)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.checks import run_checks

from prorata.payments.errors import CardTokenInvalid, IdempotencyKeyReused
from prorata.payments.gateway import ChargeOutcome, get_gateway
from prorata.payments.models import StripeAttempt
from prorata.payments.stripe_gateway import METADATA_KEY, STRIPE_JS, StripeGateway, script
from prorata_core.money import Money

pytestmark = pytest.mark.django_db

AT = datetime(2026, 3, 11, tzinfo=UTC)


def saved(fake, method="pm_card_visa"):
    return get_gateway().payment_method_create(token=method, at=AT)


def usd(cents):
    return Money(cents, "USD")


def test_the_settings_select_the_stripe_gateway(fake_stripe):
    assert isinstance(get_gateway(), StripeGateway)


def test_saving_a_card_makes_a_customer_and_a_confirmed_off_session_setup_intent(fake_stripe):
    card = saved(fake_stripe, "pm_card_mastercard")

    customer, = fake_stripe.posts("/v1/customers")
    setup, = fake_stripe.posts("/v1/setup_intents")
    assert setup.params["payment_method"] == "pm_card_mastercard"
    assert setup.params["confirm"] == "true"
    assert setup.params["usage"] == "off_session"
    assert setup.params["customer"] == card.token.split("/")[0]
    assert customer.idempotency_key and setup.idempotency_key
    assert customer.authorization == "Bearer sk_test_fake"
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("Mastercard", "4444", 12,
                                                                       2030)
    assert card.token == f"{setup.params['customer']}/pm_card_mastercard"


def test_a_legacy_token_becomes_a_payment_method_first(fake_stripe):
    card = saved(fake_stripe, "tok_visa")
    made, = fake_stripe.posts("/v1/payment_methods")
    assert made.params == {"type": "card", "card[token]": "tok_visa"}
    assert card.token.endswith("/" + fake_stripe.posts("/v1/setup_intents")[0]
                               .params["payment_method"])


@pytest.mark.parametrize("token", ["", "4242424242424242", "pm_does_not_exist"])
def test_a_token_stripe_does_not_know_is_refused_with_nothing_saved(fake_stripe, token):
    with pytest.raises(CardTokenInvalid):
        saved(fake_stripe, token)


def test_a_charge_is_a_confirmed_payment_intent_carrying_prorata_s_key(fake_stripe):
    card = saved(fake_stripe)
    result = get_gateway().charge(token=card.token, amount=usd(14_900),
                                  idempotency_key="order:7:1", description="Order 7",
                                  return_url="http://127.0.0.1:8000/back")

    assert result.outcome == ChargeOutcome.SUCCEEDED
    sent, = fake_stripe.posts("/v1/payment_intents")
    assert sent.idempotency_key == "order:7:1"
    assert sent.params["amount"] == "14900"
    assert sent.params["currency"] == "usd"
    assert sent.params["confirm"] == "true"
    assert sent.params[f"metadata[{METADATA_KEY}]"] == "order:7:1"
    assert sent.params["return_url"] == "http://127.0.0.1:8000/back"
    assert "off_session" not in sent.params
    assert result.reference == StripeAttempt.objects.get(idempotency_key="order:7:1").stripe_id
    assert result.reference in fake_stripe.intents


def test_the_same_key_again_reads_the_intent_back_and_never_makes_a_second(fake_stripe):
    card = saved(fake_stripe)
    gateway = get_gateway()
    first = gateway.charge(token=card.token, amount=usd(500), idempotency_key="k1",
                           description="x")
    again = gateway.charge(token=card.token, amount=usd(500), idempotency_key="k1",
                           description="x")
    assert again == first
    assert len(fake_stripe.posts("/v1/payment_intents")) == 1
    with pytest.raises(IdempotencyKeyReused):
        gateway.charge(token=card.token, amount=usd(501), idempotency_key="k1", description="x")
    assert len(fake_stripe.posts("/v1/payment_intents")) == 1


@pytest.mark.parametrize(("method", "outcome", "message"), [
    ("pm_card_chargeDeclined", ChargeOutcome.DECLINED, "declined"),
    ("pm_card_chargeDeclinedInsufficientFunds", ChargeOutcome.INSUFFICIENT_FUNDS,
     "insufficient funds"),
])
def test_card_errors_are_definite_refusals(fake_stripe, method, outcome, message):
    card = saved(fake_stripe, method)
    result = get_gateway().charge(token=card.token, amount=usd(500), idempotency_key="k-decl",
                                  description="x")
    assert result.outcome == outcome
    assert message in result.message
    assert result.reference in fake_stripe.intents  # Stripe's PaymentIntent, kept for support
    assert get_gateway().lookup(idempotency_key="k-decl").outcome == outcome


def test_authentication_required_with_the_customer_present_carries_the_redirect_url(fake_stripe):
    card = saved(fake_stripe, "pm_card_authenticationRequired")
    gateway = get_gateway()
    result = gateway.charge(token=card.token, amount=usd(500), idempotency_key="k-3ds",
                            description="x", return_url="http://127.0.0.1:8000/back")

    assert result.outcome == ChargeOutcome.REQUIRES_ACTION
    assert result.action_url == f"{fake_stripe.url}/3ds/{result.reference}"
    assert gateway.lookup(idempotency_key="k-3ds").outcome == ChargeOutcome.REQUIRES_ACTION

    fake_stripe.authenticate(result.reference, approve=True)
    assert gateway.lookup(idempotency_key="k-3ds").outcome == ChargeOutcome.SUCCEEDED
    # the same key again (a return page, a reconciliation) reads the new state: charged once
    again = gateway.charge(token=card.token, amount=usd(500), idempotency_key="k-3ds",
                           description="x", return_url="http://127.0.0.1:8000/back")
    assert again.outcome == ChargeOutcome.SUCCEEDED
    assert len(fake_stripe.posts("/v1/payment_intents")) == 1


def test_a_failed_authentication_is_a_decline(fake_stripe):
    card = saved(fake_stripe, "pm_card_authenticationRequired")
    gateway = get_gateway()
    result = gateway.charge(token=card.token, amount=usd(500), idempotency_key="k-3ds-no",
                            description="x", return_url="http://x/back")
    fake_stripe.authenticate(result.reference, approve=False)
    found = gateway.lookup(idempotency_key="k-3ds-no")
    assert found.outcome == ChargeOutcome.DECLINED
    assert "authenticate" in found.message


def test_off_session_authentication_required_is_requires_action_without_a_page(fake_stripe):
    card = saved(fake_stripe, "pm_card_authenticationRequired")
    result = get_gateway().charge(token=card.token, amount=usd(500), idempotency_key="renewal:1",
                                  description="x", off_session=True)
    sent, = fake_stripe.posts("/v1/payment_intents")
    assert sent.params["off_session"] == "true"
    assert "return_url" not in sent.params
    assert (result.outcome, result.action_url) == (ChargeOutcome.REQUIRES_ACTION, "")


def test_a_timeout_is_unknown_and_the_lookup_finds_the_charge_without_a_second_intent(
        fake_stripe):
    card = saved(fake_stripe)
    gateway = get_gateway()
    fake_stripe.mode = "timeout"
    result = gateway.charge(token=card.token, amount=usd(500), idempotency_key="k-lost",
                            description="x")
    assert result.outcome == ChargeOutcome.UNKNOWN
    assert StripeAttempt.objects.get(idempotency_key="k-lost").stripe_id == ""

    found = gateway.lookup(idempotency_key="k-lost")
    assert found.outcome == ChargeOutcome.SUCCEEDED
    assert found.reference in fake_stripe.intents
    # found by listing the customer's intents, then kept: the next look reads it by id
    assert StripeAttempt.objects.get(idempotency_key="k-lost").stripe_id == found.reference
    assert gateway.charge(token=card.token, amount=usd(500), idempotency_key="k-lost",
                          description="x").outcome == ChargeOutcome.SUCCEEDED
    assert len(fake_stripe.posts("/v1/payment_intents")) == 1
    assert fake_stripe.requests[-1].path == f"/v1/payment_intents/{found.reference}"


def test_a_server_error_is_unknown_and_the_lookup_says_never_received(fake_stripe):
    card = saved(fake_stripe)
    gateway = get_gateway()
    fake_stripe.mode = "error"
    result = gateway.charge(token=card.token, amount=usd(500), idempotency_key="k-500",
                            description="x")
    assert result.outcome == ChargeOutcome.UNKNOWN
    assert gateway.lookup(idempotency_key="k-500") is None  # safe to send again, same key
    fake_stripe.mode = ""
    assert gateway.charge(token=card.token, amount=usd(500), idempotency_key="k-500",
                          description="x").outcome == ChargeOutcome.SUCCEEDED
    assert [r.idempotency_key for r in fake_stripe.posts("/v1/payment_intents")] == [
        "k-500", "k-500"]
    assert len(fake_stripe.intents) == 1


def test_a_key_never_sent_is_unknown_to_lookup_without_asking_stripe(fake_stripe):
    before = len(fake_stripe.requests)
    assert get_gateway().lookup(idempotency_key="never-sent") is None
    assert len(fake_stripe.requests) == before


def test_a_stripe_that_does_not_answer_a_lookup_raises_rather_than_saying_never_received(
        fake_stripe, settings):
    card = saved(fake_stripe)
    fake_stripe.mode = "timeout"
    get_gateway().charge(token=card.token, amount=usd(500), idempotency_key="k-down",
                         description="x")
    settings.PRORATA_STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    with pytest.raises(Exception):  # noqa: B017 - any error: the callers take it as "not known"
        get_gateway().lookup(idempotency_key="k-down")


def test_refunds_carry_their_own_key_and_are_read_back(fake_stripe):
    card = saved(fake_stripe)
    gateway = get_gateway()
    paid = gateway.charge(token=card.token, amount=usd(1_000), idempotency_key="k-paid",
                          description="x")
    refund = gateway.refund(reference=paid.reference, amount=usd(400),
                            idempotency_key="prorata:refund:1")
    assert refund.outcome == ChargeOutcome.SUCCEEDED
    sent, = fake_stripe.posts("/v1/refunds")
    assert (sent.idempotency_key, sent.params["payment_intent"], sent.params["amount"]) == (
        "prorata:refund:1", paid.reference, "400")
    assert gateway.refund(reference=paid.reference, amount=usd(400),
                          idempotency_key="prorata:refund:1") == refund
    assert len(fake_stripe.posts("/v1/refunds")) == 1
    assert gateway.lookup(idempotency_key="prorata:refund:1") == refund
    too_much = gateway.refund(reference=paid.reference, amount=usd(700),
                              idempotency_key="prorata:refund:2")
    assert too_much.outcome == ChargeOutcome.DECLINED


def test_the_card_form_is_the_pinned_adapter_that_loads_stripe_js(fake_stripe, client):
    form = get_gateway().card_form(locale="fr")
    content, integrity = script()
    assert form.script_url == "/payments/stripe/v1/card.js"
    assert form.integrity == integrity and integrity.startswith("sha384-")
    assert form.options == {"stripe_js": STRIPE_JS, "publishable_key": "pk_test_fake",
                            "locale": "fr"}
    served = client.get(form.script_url)
    assert served.status_code == 200 and served.content == content
    assert b"createPaymentMethod" in content


def test_the_sandbox_s_card_form_loads_nothing_from_stripe(settings):
    settings.PRORATA_PAYMENT_GATEWAY = "sandbox"
    form = get_gateway().card_form(locale="en")
    assert form.script_url.startswith("/sandbox-gateway/")
    assert "stripe" not in str(form.options)


@pytest.mark.parametrize("missing", ["PRORATA_STRIPE_SECRET_KEY",
                                     "PRORATA_STRIPE_PUBLISHABLE_KEY",
                                     "PRORATA_STRIPE_WEBHOOK_SECRET"])
def test_stripe_selected_without_a_key_is_refused_by_the_checks(fake_stripe, settings, missing):
    assert not [m for m in run_checks() if m.id and m.id.startswith("prorata.E00")]
    assert not [m for m in run_checks() if m.id == "prorata.W001"]
    # sk_test_: check --deploy reminds that no real card is charged
    assert [m.id for m in run_checks(include_deployment_checks=True)
            if m.id == "prorata.W001"] == ["prorata.W001"]
    setattr(settings, missing, "")
    errors = [m for m in run_checks() if m.id and m.id.startswith("prorata.E00")]
    assert len(errors) == 1 and missing in errors[0].msg


def test_the_sandbox_needs_no_stripe_key(settings):
    settings.PRORATA_PAYMENT_GATEWAY = "sandbox"
    settings.PRORATA_STRIPE_SECRET_KEY = ""
    assert not [m for m in run_checks() if m.id and m.id.startswith("prorata.E00")]
