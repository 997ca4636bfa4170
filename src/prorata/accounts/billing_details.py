"""An account's billing details (issue 16): legal name, address, country, VAT number, billing
e-mail and time zone — what every document issued afterwards prints in its buyer block (the
snapshot is taken from the account when the document is numbered), and the zone its dates are
shown in.

:func:`account_billing_details_update` is the one writer; it validates everything first and
changes nothing on a refusal, and it records the before/after in the audit log.
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext_noop

from prorata.accounts.countries import country_choices, default_time_zone, time_zones
from prorata.accounts.errors import BillingDetailsInvalid
from prorata.accounts.models import Account, User
from prorata.accounts.services import audit_record
from prorata.billing.locks import lock_account
from prorata.common.cardnumbers import has_card_number, mask_card_numbers
from prorata_core.tax import EU_COUNTRIES, normalize_vat_number


def zone_name(time_zone: str, country: str) -> str:
    """The zone an account's dates are shown in: its billing details' choice (``time_zone``),
    else its country's main zone (:func:`~prorata.accounts.countries.default_time_zone`; UTC
    for an unknown country). Every account made before the setting existed was given its
    country's by migration ``accounts.0005``; this covers one made without it since."""
    return time_zone if time_zone in time_zones() else default_time_zone(country)


def account_time_zone(account: Account) -> str:
    """:func:`zone_name` of ``account``."""
    return zone_name(account.time_zone, account.country)


def account_zone_by_id(account_id: int) -> zoneinfo.ZoneInfo | None:
    """The zone of the account ``account_id`` (one indexed read), or None if there is none."""
    row = Account.objects.filter(pk=account_id).values_list("time_zone", "country").first()
    if row is None:
        return None
    return _zone(zone_name(*row))


@lru_cache(maxsize=256)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def _details(account: Account) -> dict[str, str]:
    return {"name": account.name, "billing_address": account.billing_address,
            "country": account.country, "vat_number": account.vat_number,
            "billing_email": account.billing_email, "time_zone": account.time_zone}


def account_billing_details_update(
    *, account: Account, actor: User, name: str, billing_address: str, country: str,
    vat_number: str, billing_email: str, time_zone: str, ip: str | None = None,
) -> Account:
    """Save ``account``'s billing details, audited as ``account.billing_details``.

    ``name`` is the legal name printed on documents; ``vat_number`` is checked for ``country``
    (format and check digit) and stored normalised in the EU (elsewhere it is only printed); ``time_zone`` is an IANA name ("" shows UTC). Refusals (:class:`BillingDetailsInvalid`, ``InvalidVatNumber``) change nothing.
    Documents already issued keep the details they were issued with.
    """
    name = mask_card_numbers(" ".join(name.split()))
    country = country.strip().upper()
    address = mask_card_numbers("\n".join(
        line.strip() for line in billing_address.strip().splitlines() if line.strip()))
    email = billing_email.strip().lower()
    zone = time_zone.strip()
    if not name:
        raise BillingDetailsInvalid(gettext_noop("Enter the legal name to print on invoices."),
                                    field="name")
    if country not in dict(country_choices("en")):
        raise BillingDetailsInvalid(gettext_noop("Choose your country from the list."),
                                    field="country")
    if email:
        try:
            validate_email(email)
        except DjangoValidationError:
            raise BillingDetailsInvalid(gettext_noop("Enter a valid e-mail address."),
                                        field="billing_email") from None
    if zone and zone not in time_zones():
        raise BillingDetailsInvalid(gettext_noop("Choose a time zone from the list."),
                                    field="time_zone")
    vat = "".join(vat_number.split()).upper()
    if vat and country in EU_COUNTRIES:
        vat = normalize_vat_number(vat_number, country)
    elif len(vat) > 20:  # outside the EU it is printed only: a tax id of any format
        raise BillingDetailsInvalid(gettext_noop("A tax number has at most 20 characters."),
                                    field="vat_number")
    elif has_card_number(vat):  # printed as typed: masking it would print a wrong tax number
        raise BillingDetailsInvalid(gettext_noop(
            "This looks like a card number, not a tax number: never type a card number here."),
            field="vat_number")
    with transaction.atomic():
        locked = lock_account(account.pk)
        before = _details(locked)
        locked.name, locked.billing_address, locked.country = name, address, country
        locked.vat_number, locked.billing_email, locked.time_zone = vat, email, zone
        after = _details(locked)
        if after != before:
            locked.save(update_fields=["name", "billing_address", "country", "vat_number",
                                       "billing_email", "time_zone"])
            audit_record(actor=actor, action="account.billing_details", account=locked,
                         obj=locked, before=before, after=after, ip=ip)
    return locked
