"""Services that write people, accounts, memberships and the audit log. Callers pass ``now``-free
arguments: instants come from :func:`prorata.common.clock.now` here, once per call."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from prorata.accounts.access import membership_changed
from prorata.accounts.countries import default_time_zone
from prorata.accounts.models import Account, AuditEntry, BillingMode, Membership, User
from prorata.common.cardnumbers import mask_card_numbers
from prorata.common.clock import now
from prorata.webhooks.events import webhook_emit
from prorata.webhooks.payloads import customer_object
from prorata_core.errors import ValidationError
from prorata_core.tax import normalize_vat_number


def audit_record(
    *,
    actor: User | None,
    action: str,
    account: Account | None = None,
    obj: Any = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEntry:
    """Append one audit entry at the project clock's instant. Call it inside the transaction of
    the action it records, so that both are kept or neither."""
    entry = audit_entry(actor=actor, action=action, account=account, obj=obj, before=before,
                        after=after, ip=ip)
    entry.save(force_insert=True)
    return entry


def audit_entry(
    *,
    actor: User | None,
    action: str,
    account: Account | None = None,
    obj: Any = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEntry:
    """The audit entry :func:`audit_record` appends, not saved yet: for a caller that writes it
    with the rest of its transaction's rows in one statement (the checkout's order completion,
    :func:`prorata.subscriptions.queries.order_complete`)."""
    return AuditEntry(
        at=now(),
        actor=actor if actor is not None and actor.pk else None,
        actor_email=actor.email if actor is not None and actor.pk else "",
        account=account,
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        before=before,
        after=after,
        ip=ip,
    )


def account_create(
    *,
    name: str,
    country: str,
    actor: User | None = None,
    currency: str = "",
    billing_address: str = "",
    vat_number: str = "",
    billing_mode: str = BillingMode.SELF_SERVICE,
    advisor: User | None = None,
    language: str = "en",
    payment_terms_days: int = 30,
    time_zone: str = "",
) -> Account:
    """Create a customer account; the VAT number is validated and stored normalised; its
    time zone is ``time_zone``, else its country's main zone
    (:func:`~prorata.accounts.countries.default_time_zone`).

    A corporate account needs an advisor. Bad input raises a ValidationError and creates nothing.
    """
    country = country.strip().upper()
    if len(country) != 2 or not country.isalpha():
        raise ValidationError(
            f"{country!r} is not a country code; use two letters such as FR or US.", country=country
        )
    if vat_number.strip():
        vat_number = normalize_vat_number(vat_number, country)
    if billing_mode == BillingMode.CORPORATE and advisor is None:
        raise ValidationError("A corporate account needs an advisor: choose a staff member.")
    with transaction.atomic():
        account = Account.objects.create(
            name=mask_card_numbers(name.strip()), country=country, currency=currency,
            billing_address=mask_card_numbers(billing_address),
            vat_number=vat_number.strip(), billing_mode=billing_mode, advisor=advisor,
            language=language, payment_terms_days=payment_terms_days, created_at=now(),
            time_zone=time_zone or default_time_zone(country),
        )
        audit_record(actor=actor, action="account.create", account=account, obj=account,
                     after={"name": account.name, "country": country,
                            "billing_mode": billing_mode})
        webhook_emit("customer.created", key=f"customer.created:{account.pk}",
                     at=account.created_at, data=lambda: customer_object(account))
    return account


def membership_set_roles(
    *,
    actor: User | None,
    account: Account,
    user: User,
    billing_contact: bool = False,
    admin: bool = False,
    organizer: bool = False,
    ip: str | None = None,
) -> Membership:
    """Give ``user`` exactly these roles in ``account`` (creating the membership), audited."""
    with transaction.atomic():
        member, created = Membership.objects.select_for_update().get_or_create(
            user=user, account=account
        )
        before = None if created else {"roles": member.roles}
        if not created and (member.is_billing_contact, member.is_admin, member.is_organizer) == (
            billing_contact, admin, organizer
        ):
            return member  # nothing changes, so nothing is recorded
        member.is_billing_contact = billing_contact
        member.is_admin = admin
        member.is_organizer = organizer
        member.save()
        membership_changed(user.pk, account.pk)
        audit_record(actor=actor, action="membership.roles", account=account, obj=member,
                     before=before, after={"user": user.email, "roles": member.roles}, ip=ip)
    return member
