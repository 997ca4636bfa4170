"""The sandbox gateway's own pages: its tokenisation endpoint's refusals, and the 3-D Secure card
(4000 0027 6000 3184) through its challenge page: approved, failed, expired, off session."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from prorata.common.clock import now
from prorata.payments.gateway import ChargeOutcome
from prorata.payments.models import SandboxCard
from prorata.payments.sandbox import SandboxGateway, sandbox_token
from prorata_core.money import Money

pytestmark = pytest.mark.django_db

SCA_CARD = "4000 0027 6000 3184"
EUR = Money(12_900, "EUR")


_CHALLENGE = (Path(__file__).parents[3] / "src/prorata/payments/templates/payments/sandbox"
              / "challenge.html")


def english_on_the_challenge_page(text: str, *, description: str) -> list[str]:
    """The English sentences of the challenge page (every one its template translates, and the
    merchant's ``description`` as sent in English) found in its visible ``text``."""
    template = _CHALLENGE.read_text()
    english = re.findall(r'{% translate "([^"]+)" %}', template) + [
        part.strip() for block in re.findall(r"{% blocktranslate[^%]*%}(.*?){% endblocktranslate %}",
                                             template)
        for part in re.split(r"{{.*?}}", block) if part.strip()]
    return [sentence for sentence in [*english, description] if sentence in text]


def _method(number: str = SCA_CARD) -> str:
    return SandboxGateway().payment_method_create(token=sandbox_token(number), at=now()).token


def test_the_tokens_endpoint_refuses_bad_input_with_the_field_and_saves_nothing(client, clock):
    url = "/sandbox-gateway/v1/tokens"
    assert client.post(url, "not json", content_type="application/json").status_code == 400
    bad = client.post(url, json.dumps({"number": "4242 4242 4242 4241", "expiry": "12/30",
                                       "cvc": "123", "locale": "fr"}),
                      content_type="application/json")
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "number"
    assert bad.json()["error"]["message"].startswith("Ce numéro de carte n'est pas valide")
    missing = client.post(url, json.dumps({"number": "4242424242424242", "cvc": "123"}),
                          content_type="application/json")
    assert missing.json()["error"]["field"] == "expiry"
    assert SandboxCard.objects.count() == 0
    good = client.post(url, json.dumps({"number": "4242424242424242", "expiry": "12/30",
                                        "cvc": "123"}), content_type="application/json")
    assert good.status_code == 201 and good.json()["token"].startswith("tok_sandbox_")


def test_an_approved_challenge_charges_once_and_returns_to_the_merchant(client, clock):
    gateway, token = SandboxGateway(), _method()
    first = gateway.charge(token=token, amount=EUR, idempotency_key="k1", description="Order 1",
                           return_url="http://shop.example/back")
    assert first.outcome == ChargeOutcome.REQUIRES_ACTION and first.action_url
    assert gateway.lookup(idempotency_key="k1").outcome == ChargeOutcome.REQUIRES_ACTION
    page = client.get(first.action_url)
    assert page.status_code == 200 and "€129.00" in page.content.decode()
    answered = client.post(first.action_url, {"answer": "approve"})
    assert (answered.status_code, answered["Location"]) == (303, "http://shop.example/back")
    assert gateway.lookup(idempotency_key="k1").outcome == ChargeOutcome.SUCCEEDED
    again = gateway.charge(token=token, amount=EUR, idempotency_key="k1", description="Order 1")
    assert again.outcome == ChargeOutcome.SUCCEEDED  # the same key: the same charge, once
    # answering again changes nothing
    client.post(first.action_url, {"answer": "fail"})
    assert gateway.lookup(idempotency_key="k1").outcome == ChargeOutcome.SUCCEEDED


def test_a_failed_or_expired_challenge_is_declined_and_an_unknown_one_is_404(client, clock):
    gateway, token = SandboxGateway(), _method()
    failed = gateway.charge(token=token, amount=EUR, idempotency_key="f", description="x",
                            return_url="/back")
    client.post(failed.action_url, {"answer": "fail"})
    result = gateway.lookup(idempotency_key="f")
    assert result.outcome == ChargeOutcome.DECLINED
    assert result.message.startswith("Your bank could not authenticate this payment")
    late = gateway.charge(token=token, amount=EUR, idempotency_key="e", description="x",
                          return_url="/back")
    clock.advance(timedelta(minutes=11))
    assert client.post(late.action_url, {"answer": "approve"}).status_code == 303
    result = gateway.lookup(idempotency_key="e")
    assert result.outcome == ChargeOutcome.DECLINED  # too late: approving does not charge
    assert result.message.startswith("The authentication with your bank was not completed")
    assert client.get("/sandbox-gateway/v1/challenge/no-such-secret").status_code == 404
    assert client.post("/sandbox-gateway/v1/challenge/no-such-secret",
                       {"answer": "approve"}).status_code == 404


def test_off_session_the_card_requires_action_without_a_page(clock):
    gateway = SandboxGateway()
    result = gateway.charge(token=_method(), amount=EUR, idempotency_key="r",
                            description="Invoice 1", off_session=True)
    assert (result.outcome, result.action_url) == (ChargeOutcome.REQUIRES_ACTION, "")
    assert gateway.lookup(idempotency_key="r").outcome == ChargeOutcome.REQUIRES_ACTION
