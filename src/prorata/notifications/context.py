"""Values as e-mail contexts carry them: plain JSON, stored in the outbox with the message."""

from __future__ import annotations

from typing import Any


def money_json(amount: int, currency: str) -> dict[str, Any]:
    """An amount for an e-mail's context: minor units and currency (never a float); the
    templates format it for the reader's language."""
    return {"amount": amount, "currency": currency}
