"""Refusals of webinar actions, with their translated page messages."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from prorata_core.errors import ProrataError


class HostingRefused(ProrataError):
    """The user may not schedule now; ``params.reason``: no_license, no_subscription, expired,
    past_due."""

    code = "hosting_refused"
    http_status = 403


class WebinarFull(ProrataError):
    code = "webinar_full"
    http_status = 409


class AlreadyRegistered(ProrataError):
    code = "already_registered"
    http_status = 409


class RegistrationClosed(ProrataError):
    code = "registration_closed"
    http_status = 409


class WebinarNotFound(ProrataError):
    code = "webinar_not_found"
    http_status = 404


class WebinarNotEditable(ProrataError):
    code = "webinar_not_editable"
    http_status = 409


REASONS: dict[str, Any] = {
    "no_license": _(
        "You hold no license, so you cannot schedule new webinars (your scheduled ones stay). "
        "Ask an admin or a billing contact of the account to assign you one."
    ),
    "no_subscription": _(
        "The account has no subscription: its billing contact subscribes to a plan first."
    ),
    "expired": _(
        "The account's subscription has expired, so no new webinar can be scheduled. Its billing "
        "contact reactivates it with Subscribe now in the billing center."
    ),
    "past_due": _(
        "The account's subscription has an unpaid invoice, so no new webinar can be scheduled. "
        "Its billing contact pays it with Pay now in the billing center."
    ),
}

MESSAGES: dict[str, Any] = {
    # Shown only when the reason is missing: REASONS words each known one.
    "hosting_refused": _(
        "You cannot schedule a webinar now: ask an admin of the account for a license, or its "
        "billing contact to renew or pay the subscription."
    ),
    "webinar_not_found": _(
        "There is no webinar at this address: it may have been cancelled. Check the link you "
        "were sent."
    ),
    "webinar_full": _(
        "This webinar is full (%(limit)s participants): registrations are closed. Contact the "
        "organizer if you need a place."
    ),
    "already_registered": _(
        "%(email)s is already registered for this webinar: check your inbox for the "
        "confirmation."
    ),
    "registration_closed": _("This webinar has started, ended or been cancelled: registrations "
                             "are closed."),
    "webinar_not_editable": _(
        "This webinar has started or been cancelled: it can no longer be changed."
    ),
}


def message_for(error: ProrataError) -> str:
    """The reader's-language message of ``error``."""
    if error.code == "hosting_refused":
        template = REASONS.get(str(error.params.get("reason"))) or MESSAGES[error.code]
    else:
        template = MESSAGES.get(error.code)
    if template is None:
        from prorata.web.errors import error_message

        return error_message(error)
    try:
        return str(template) % dict(error.params)
    except (KeyError, TypeError, ValueError):
        return gettext(error.message)
