"""``{% load webinars_note %}{% scheduled_note account plans as note %}``: what Modify
subscription says next to the plan choice about the account's scheduled webinars (S5)."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import gettext, ngettext

from prorata.web.templatetags.prorata import count as format_count
from prorata.webinars.selectors import upcoming_webinars

register = template.Library()


@register.simple_tag
def scheduled_note(account: Any, plans: list[Any]) -> str:
    """"Your 2 scheduled webinars keep their limit of 500; upgrading to Pro raises them to
    1,000." — empty without upcoming webinars. ``plans``: the page's plan options."""
    if account is None:
        return ""
    rows = upcoming_webinars(account=account)
    if not rows:
        return ""
    lowest = min(row.limit for row in rows)
    highest = max((option["plan"] for option in plans),
                  key=lambda plan: plan.participant_limit, default=None)
    keep = ngettext(
        "Your %(count)s scheduled webinar keeps its limit of %(limit)s participants whatever "
        "you change",
        "Your %(count)s scheduled webinars keep their limit of %(limit)s participants whatever "
        "you change", len(rows)) % {"count": format_count(len(rows)),
                                    "limit": format_count(lowest)}
    if highest is not None and highest.participant_limit > lowest:
        return keep + gettext("; upgrading to %(plan)s raises them to %(limit)s.") % {
            "plan": highest.name, "limit": format_count(highest.participant_limit)}
    return keep + "."
