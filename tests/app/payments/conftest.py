"""The Stripe gateway's tests run against a local fake Stripe (tests/app/payments/fake_stripe.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.app.payments.fake_stripe import FakeStripe, FakeStripeServer


@pytest.fixture
def fake_stripe(settings: object) -> Iterator[FakeStripe]:
    """A fake Stripe on 127.0.0.1, and the settings that select the Stripe gateway on it (a
    client timeout of half a second, so that the fake's ``timeout`` mode is one)."""
    server = FakeStripeServer()
    settings.PRORATA_PAYMENT_GATEWAY = "stripe"  # type: ignore[attr-defined]
    settings.PRORATA_STRIPE_SECRET_KEY = "sk_test_fake"  # type: ignore[attr-defined]
    settings.PRORATA_STRIPE_PUBLISHABLE_KEY = "pk_test_fake"  # type: ignore[attr-defined]
    settings.PRORATA_STRIPE_WEBHOOK_SECRET = server.fake.webhook_secret  # type: ignore[attr-defined]
    settings.PRORATA_STRIPE_API_BASE = server.fake.url  # type: ignore[attr-defined]
    settings.PRORATA_STRIPE_TIMEOUT = 0.5  # type: ignore[attr-defined]
    try:
        yield server.fake
    finally:
        server.stop()
