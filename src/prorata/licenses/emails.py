"""The e-mails of licenses, members and webinars: their context contracts in the outbox's
:data:`~prorata.notifications.outbox.TEMPLATES` (templates under
``templates/notifications/email/<name>/`` of this app and of :mod:`prorata.webinars`)."""

from __future__ import annotations

from prorata.notifications.outbox import TEMPLATES

CONTRACTS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # A member was given a license (S22): they may now host webinars of the product.
    "license_assigned": (frozenset({"account", "product"}), frozenset({"name", "url"})),
    # A member's license was taken back (unassigned, member removed, fewer licenses bought).
    "license_unassigned": (frozenset({"account", "product"}), frozenset({"name", "url"})),
    # An invitation to join an account; expires_at is an ISO 8601 UTC instant.
    "member_invitation": (frozenset({"account", "url", "expires_at"}),
                          frozenset({"inviter", "with_license"})),
    # A visitor registered for a webinar; start is ISO 8601 UTC, time_zone the organizer's.
    "webinar_registration": (frozenset({"title", "start", "time_zone", "duration_minutes"}),
                             frozenset({"name", "url"})),
}


#: Optional keys this app adds to the billing e-mails sent after an order (receipts.py).
RECEIPT_KEYS = frozenset({"unassigned_licenses", "licenses_url"})


def register() -> None:
    """Declare the contracts, and the receipt keys on the order e-mails (idempotent; called by
    the app's ``ready``)."""
    TEMPLATES.update(CONTRACTS)
    for name in ("receipt", "credit_created"):
        if name in TEMPLATES:
            required, optional = TEMPLATES[name]
            TEMPLATES[name] = (required, optional | RECEIPT_KEYS)
