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
    CardDetails,
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

    def tokenize(self, *, card: CardDetails, at: datetime) -> TokenizedCard:
        self.calls.append("tokenize")
        digits = card.number.replace(" ", "").replace("-", "")
        return TokenizedCard(f"tok_fake_{len(self.calls)}", "Visa", digits[-4:],
                             card.exp_month, card.exp_year)

    def charge(
        self, *, token: str, amount: Money, idempotency_key: str, description: str
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
