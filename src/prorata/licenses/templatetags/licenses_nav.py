"""``{% load licenses_nav %}{% people_links account as links %}``: which of the Licenses, Members
and Webinars tabs the signed-in reader may open (the billing center's sub-navigation)."""

from __future__ import annotations

from typing import Any

from django import template

from prorata.accounts.permissions import Action, can

register = template.Library()


@register.simple_tag(takes_context=True)
def people_links(context: Any, account: Any) -> dict[str, bool]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or account is None:
        return {}
    return {
        "licenses": can(user, Action.MANAGE_LICENSES, account),
        "members": can(user, Action.MANAGE_LICENSES, account),
        "webinars": can(user, Action.VIEW_ACCOUNT, account),
    }


@register.simple_tag
def unassigned_after(order: Any, account: Any) -> int:
    """How many licenses are unassigned after ``order``, if it added licenses (else 0)."""
    from prorata.licenses.receipts import license_receipt_context

    if order is None or account is None or order.status not in ("paid", "invoiced"):
        return 0
    return int(license_receipt_context(order=order, account=account).get(
        "unassigned_licenses", 0))


@register.simple_tag
def license_holders(account: Any, product_code: str) -> list[Any]:
    """The members holding a license of the account's ``product_code`` subscription."""
    from prorata.licenses.selectors import holders_of

    return holders_of(account=account, product_code=product_code) if account else []


@register.simple_tag
def releases_pending(account: Any) -> list[Any]:
    """The members chosen to lose their license at the account's next order."""
    from prorata.licenses.models import LicenseRelease

    if account is None:
        return []
    return list(LicenseRelease.objects.filter(subscription__account=account,
                                              order__isnull=True).order_by("email"))


@register.simple_tag
def releases_of(order: Any) -> list[str]:
    """The e-mail addresses whose license ``order`` freed."""
    if order is None:
        return []
    return list(order.license_releases.order_by("email").values_list("email", flat=True))
