"""Refusals of license, member and invitation actions (STYLE rule 10), with their page messages.

Each error's English ``message`` says what was wrong and what to do; :data:`MESSAGES` gives the
translated page message for each ``code`` (filled from ``params``), used by :func:`message_for`.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from prorata_core.errors import ProrataError


class NoFreeLicense(ProrataError):
    """Every license of the pool is assigned. ``params``: ``bought``, ``used``."""

    code = "no_free_license"
    http_status = 409


class NoSubscription(ProrataError):
    """The account has no subscription whose licenses could be assigned."""

    code = "no_subscription"
    http_status = 409


class AlreadyLicensed(ProrataError):
    code = "already_licensed"
    http_status = 409


class NotLicensed(ProrataError):
    code = "not_licensed"
    http_status = 409


class NotAMember(ProrataError):
    """The member named is not a member of this account (another account's is the same: 404)."""

    code = "not_a_member"
    http_status = 404


class LastBillingContact(ProrataError):
    code = "last_billing_contact"
    http_status = 409


class AlreadyMember(ProrataError):
    code = "already_member"
    http_status = 409


class InvitationUnusable(ProrataError):
    """An invitation link that is unknown, used, revoked or expired; ``params.reason`` says which."""

    code = "invitation_unusable"
    http_status = 410


class InvitationForAnotherAddress(ProrataError):
    code = "invitation_other_address"
    http_status = 403


class LicensesToFree(ProrataError):
    """An order leaves fewer licenses than are assigned and does not say which members lose theirs.
    ``params``: ``licenses`` (the new count), ``assigned``, ``to_free`` (how many to choose)."""

    code = "licenses_to_free"
    http_status = 409


class UnknownUser(ProrataError):
    """The entitlement API was asked about an address no user signs in with. ``params``: ``email``."""

    code = "unknown_user"
    http_status = 404


MESSAGES: dict[str, Any] = {
    "unknown_user": _("No user signs in with %(email)s."),
    "no_free_license": _(
        "All %(bought)s licenses are assigned. Unassign one first, or add licenses to your "
        "subscription."
    ),
    "no_subscription": _(
        "This account has no subscription yet: subscribe to a plan, then assign its licenses."
    ),
    "already_licensed": _("This member already holds a license."),
    "not_licensed": _("This member holds no license."),
    "not_a_member": _("This person is not a member of the account."),
    "last_billing_contact": _(
        "This is the account's last billing contact: make another member billing contact first."
    ),
    "already_member": _("%(email)s is already a member of this account."),
    "invitation_unusable": _(
        "This invitation link cannot be used (it expired, was already used or was withdrawn). "
        "Ask the person who invited you to send a new one."
    ),
    "invitation_other_address": _(
        "This invitation was sent to %(email)s: sign out and open the link again, or sign in "
        "with that address."
    ),
    "licenses_to_free": _(
        "The new count leaves %(licenses)s licenses for %(assigned)s members who hold one: "
        "choose %(to_free)s member(s) who lose their license."
    ),
}


def message_for(error: ProrataError) -> str:
    """The reader's-language message of one of this module's errors (others: the English
    message through gettext, as :func:`prorata.web.errors.error_message` does)."""
    template = MESSAGES.get(error.code)
    if template is None:
        from prorata.web.errors import error_message

        return error_message(error)
    try:
        return str(template) % dict(error.params)
    except (KeyError, TypeError, ValueError):
        return gettext(error.message)
