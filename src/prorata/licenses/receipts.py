"""What a checkout's confirmation says about licenses (issue 13): after an order that added
licenses, how many are unassigned and where to assign them (the seed's last sentence: "if you
added licenses, assign them to your users so that they can sign in")."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from prorata.accounts.models import Account
from prorata.licenses.selectors import unassigned_licenses


def added_licenses(order: Any) -> bool:
    """Whether ``order`` (a :class:`~prorata.subscriptions.models.Order`) added licenses to a
    subscription: a first purchase, or more licenses than before."""
    for item in order.summary.items:
        previous = item.previous
        if previous is None or item.configuration.quantity > previous.quantity:
            return True
    return False


def license_receipt_context(*, order: Any, account: Account) -> dict[str, Any]:
    """``{"unassigned_licenses", "licenses_url"}`` for the confirmation e-mail's context when the
    order added licenses and some are unassigned; else ``{}``. Call it in the order's
    transaction, after its change (and any licenses it freed) is applied."""
    if not added_licenses(order):
        return {}
    count = unassigned_licenses(account=account)
    if not count:
        return {}
    return {"unassigned_licenses": count,
            "licenses_url": reverse("licenses:licenses", args=[account.pk])}
