"""Refusals of the sign-in and profile services, in the project's error vocabulary.

Messages are English and marked with ``gettext_noop`` where they are raised; the web layer shows
``gettext(error.message)``, so each one is translated (they carry no parameters).
"""

from __future__ import annotations

from prorata_core.errors import ProrataError, ValidationError


class EmailInvalid(ValidationError):
    code = "email_invalid"


class EmailUnchanged(ValidationError):
    code = "email_unchanged"


class EmailTaken(ProrataError):
    code = "email_taken"
    http_status = 409


class EmailNotSent(ProrataError):
    code = "email_not_sent"
    http_status = 503


class EmailLinkInvalid(ProrataError):
    code = "email_link_invalid"
    http_status = 404


class EmailLinkUsed(ProrataError):
    code = "email_link_used"
    http_status = 410


class EmailLinkExpired(ProrataError):
    code = "email_link_expired"
    http_status = 410


class LanguageUnknown(ValidationError):
    code = "language_unknown"


class BillingDetailsInvalid(ValidationError):
    """Billing details refused (the message, worded where raised, names the field to fix)."""

    code = "billing_details_invalid"


class SignUpInvalid(ValidationError):
    """A sign-up refused (the message, worded where raised, names the field to fix)."""

    code = "signup_invalid"
