"""System checks of the payment gateway's settings (``prorata check``, ``check --deploy``, and
every command that runs checks, such as ``migrate``): the Stripe gateway selected without its
keys is refused before it can take a payment."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register

from prorata.payments.gateway import GATEWAYS, gateway_path


@register()
def stripe_settings(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    """E001–E003: ``PRORATA_PAYMENT_GATEWAY=stripe`` needs the secret key, the publishable key
    (the card form) and the webhook secret (asynchronous outcomes)."""
    if gateway_path() != GATEWAYS["stripe"]:
        return []
    problems: list[Error | Warning] = []
    needed = [
        ("PRORATA_STRIPE_SECRET_KEY", ("sk_", "rk_"), "prorata.E001",
         "the secret API key (sk_… or a restricted rk_…), for charges and refunds"),
        ("PRORATA_STRIPE_PUBLISHABLE_KEY", ("pk_",), "prorata.E002",
         "the publishable key (pk_…), for the card form's Stripe.js"),
        ("PRORATA_STRIPE_WEBHOOK_SECRET", ("whsec_",), "prorata.E003",
         "the webhook endpoint's signing secret (whsec_…), for asynchronous outcomes"),
    ]
    for name, prefixes, code, what in needed:
        value = str(getattr(settings, name, "") or "")
        if not value.startswith(prefixes):
            problems.append(Error(
                f"PRORATA_PAYMENT_GATEWAY=stripe needs {name}: {what}.",
                hint="Set it from the Stripe dashboard (Developers → API keys / Webhooks); "
                     "docs/payments.md.", id=code))
    return problems


@register(deploy=True)
def stripe_test_mode(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """W001 (``check --deploy``): the Stripe gateway with a test-mode secret key."""
    if gateway_path() == GATEWAYS["stripe"] and str(
            settings.PRORATA_STRIPE_SECRET_KEY).startswith(("sk_test_", "rk_test_")):
        return [Warning("PRORATA_STRIPE_SECRET_KEY is a test-mode key: no real card is charged.",
                        id="prorata.W001")]
    return []
