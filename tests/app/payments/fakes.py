"""A hand-written in-memory gateway for tests that need to script outcomes (no database).

``FakeGateway(outcomes=[...])`` answers charges with the given outcomes in order (then SUCCEEDED),
remembers every call, and keeps idempotency like a real provider: a replayed key gets its first answer.
Point ``settings.PRORATA_PAYMENT_GATEWAY`` at a module-level instance's factory to use it through
``get_gateway()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from prorata.payments.gateway import (
    OUTCOME_MESSAGES,
    CardForm,
    ChargeOutcome,
    ChargeResult,
    TokenizedCard,
)
from prorata_core.money import Money


@dataclass
class FakeGateway:
    outcomes: list[ChargeOutcome] = field(default_factory=list)
    charges: dict[str, tuple[str, Money, ChargeResult]] = field(default_factory=dict)
    refunds: dict[str, tuple[str, Money, ChargeResult]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def card_form(self, *, locale: str) -> CardForm:
        return CardForm(script_url="/fake/gateway.js", integrity="", options={"locale": locale})

    def payment_method_create(self, *, token: str, at: datetime) -> TokenizedCard:
        """Any token is a Visa whose last four digits are the token's (``tok_4242`` → 4242)."""
        self.calls.append("payment_method_create")
        return TokenizedCard(f"pm_fake_{len(self.calls)}", "Visa", token[-4:].rjust(4, "0"),
                             12, 2030)

    def charge(
        self, *, token: str, amount: Money, idempotency_key: str, description: str,
        off_session: bool = False, return_url: str = "",
    ) -> ChargeResult:
        self.calls.append(f"charge {idempotency_key}")
        if idempotency_key not in self.charges:
            outcome = self.outcomes.pop(0) if self.outcomes else ChargeOutcome.SUCCEEDED
            result = ChargeResult(outcome, f"ch_fake_{len(self.charges) + 1}",
                                  OUTCOME_MESSAGES[outcome])
            self.charges[idempotency_key] = (token, amount, result)
        return self.charges[idempotency_key][2]

    def refund(self, *, reference: str, amount: Money, idempotency_key: str) -> ChargeResult:
        self.calls.append(f"refund {idempotency_key}")
        if idempotency_key not in self.refunds:
            result = ChargeResult(ChargeOutcome.SUCCEEDED, f"re_fake_{len(self.refunds) + 1}",
                                  "Refund issued.")
            self.refunds[idempotency_key] = (reference, amount, result)
        return self.refunds[idempotency_key][2]

    def lookup(self, *, idempotency_key: str) -> ChargeResult | None:
        found = self.charges.get(idempotency_key) or self.refunds.get(idempotency_key)
        return found[2] if found else None


#: The instance ``get_gateway()`` returns when the setting names :func:`shared_fake`.
SHARED = FakeGateway()


def shared_fake() -> FakeGateway:
    return SHARED
