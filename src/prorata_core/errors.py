"""One error vocabulary for the whole project.

Every refusal is a :class:`ProrataError` with a stable machine ``code`` (used by the API, the pages and
the tests), an English ``message`` that says what was wrong and how to fix it, and ``params`` with the
values the message names, so that the web layer can translate it. Edges map these errors once, to HTTP
statuses and page messages; nothing else raises bare exceptions for business rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class ProrataError(Exception):
    """Base of every business error; never raised itself."""

    code: ClassVar[str] = "error"
    #: HTTP status the API answers with; 422 unless the error is about state or existence.
    http_status: ClassVar[int] = 422

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message)
        self.message = message
        self.params: Mapping[str, object] = params

    def __str__(self) -> str:
        return self.message

    def as_dict(self) -> dict[str, object]:
        """The error as the API returns it: ``{"code", "message", "params"}``."""
        return {"code": self.code, "message": self.message, "params": dict(self.params)}


class ValidationError(ProrataError):
    """Input that can never be valid as given (wrong format, out of range)."""

    code = "invalid_input"


class CurrencyMismatch(ValidationError):
    code = "currency_mismatch"


class UnknownCurrency(ValidationError):
    code = "unknown_currency"


class InvalidAmount(ValidationError):
    code = "invalid_amount"


class InvalidPeriod(ValidationError):
    code = "invalid_period"


class InvalidInstant(ValidationError):
    code = "invalid_instant"


class InvalidLicenseCount(ValidationError):
    code = "invalid_license_count"


class InvalidVatNumber(ValidationError):
    code = "invalid_vat_number"


class UnknownCountry(ValidationError):
    code = "unknown_country"


class NotInCatalog(ProrataError):
    """A plan, price or billing period that the catalog does not sell."""

    code = "not_in_catalog"
    http_status = 404


class ChangeRefused(ProrataError):
    """A change the policy does not allow online; the message says what to do instead."""

    code = "change_refused"
    http_status = 409


class NothingToChange(ChangeRefused):
    code = "nothing_to_change"
    http_status = 422


class DowngradeNeedsSupport(ChangeRefused):
    code = "downgrade_needs_support"


class CorporateAccount(ChangeRefused):
    code = "corporate_account"


class PastDue(ChangeRefused):
    code = "past_due"


class TrialOnlyPurchase(ChangeRefused):
    code = "trial_only_purchase"


class AdvisorPriced(ChangeRefused):
    code = "advisor_priced"


class SubscriptionExpired(ChangeRefused):
    code = "subscription_expired"


class CurrencyLocked(ChangeRefused):
    code = "currency_locked"


class AlreadySubscribed(ChangeRefused):
    code = "already_subscribed"


class TransitionRefused(ProrataError):
    """A status change the lifecycle table (:data:`prorata_core.lifecycle.TRANSITIONS`) does not
    allow; nothing was changed. ``params``: ``current`` (``"none"`` before the first state),
    ``to`` and ``event``."""

    code = "transition_refused"
    http_status = 409
