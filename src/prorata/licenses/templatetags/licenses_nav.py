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
