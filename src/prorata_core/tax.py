"""EU VAT: standard rates by date, VAT numbers, and which rule applies to a sale (DESIGN §3 "Tax").

Rates are integers in **basis points** (1 bp = 0.01 %): 20 % is ``2000``, 25.5 % is ``2550``. They
come from :data:`STANDARD_RATES`, an effective-dated table per member state; a row applies from
00:00 UTC of its ``valid_from`` day until the next row. Tax on an amount is rounded once, half away
from zero, to the minor unit (:func:`tax_amount`).

The rule for a sale (:func:`tax_decision`): a customer outside the EU pays 0 %; an EU business with
a valid VAT number of another member state than the seller's is reverse charged (0 %, with the
:data:`REVERSE_CHARGE_MENTION` on the invoice); a customer in the seller's country pays that
country's rate; any other EU customer pays their own country's standard rate.

VAT numbers are checked offline for format and check digit with python-stdnum (``stdnum.eu.vat``),
never against VIES: nothing in the core does I/O.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from stdnum.eu import vat as stdnum_vat
from stdnum.exceptions import ValidationError as StdnumValidationError

from prorata_core.errors import InvalidVatNumber, UnknownCountry
from prorata_core.money import Money, round_half_away
from prorata_core.periods import require_utc

#: Basis points in 100 %: ``tax = amount × rate_bp / BASIS_POINTS``.
BASIS_POINTS: Final = 10_000

#: The first day the rate table covers; earlier instants have no rate.
TABLE_START: Final = date(2020, 1, 1)

#: Standard VAT rate of each EU member state in basis points, as ``(valid_from, rate_bp)`` rows in
#: date order. A row applies from 00:00 UTC of ``valid_from`` (a simplification: member states
#: change at local midnight) up to the next row. Standard rates only: DESIGN §3 taxes every
#: sale at the customer's (or seller's) standard rate.
STANDARD_RATES: Final[Mapping[str, tuple[tuple[date, int], ...]]] = MappingProxyType({
    "AT": ((TABLE_START, 2000),),
    "BE": ((TABLE_START, 2100),),
    "BG": ((TABLE_START, 2000),),
    "CY": ((TABLE_START, 1900),),
    "CZ": ((TABLE_START, 2100),),
    # Temporary COVID-19 cut, second half of 2020 only.
    "DE": ((TABLE_START, 1900), (date(2020, 7, 1), 1600), (date(2021, 1, 1), 1900)),
    "DK": ((TABLE_START, 2500),),
    "EE": ((TABLE_START, 2000), (date(2024, 1, 1), 2200), (date(2025, 7, 1), 2400)),
    "ES": ((TABLE_START, 2100),),
    "FI": ((TABLE_START, 2400), (date(2024, 9, 1), 2550)),
    "FR": ((TABLE_START, 2000),),
    "GR": ((TABLE_START, 2400),),
    "HR": ((TABLE_START, 2500),),
    "HU": ((TABLE_START, 2700),),
    # Temporary COVID-19 cut, 1 September 2020 to 28 February 2021.
    "IE": ((TABLE_START, 2300), (date(2020, 9, 1), 2100), (date(2021, 3, 1), 2300)),
    "IT": ((TABLE_START, 2200),),
    "LT": ((TABLE_START, 2100),),
    # Temporary energy-crisis cut, calendar year 2023 only.
    "LU": ((TABLE_START, 1700), (date(2023, 1, 1), 1600), (date(2024, 1, 1), 1700)),
    "LV": ((TABLE_START, 2100),),
    "MT": ((TABLE_START, 1800),),
    "NL": ((TABLE_START, 2100),),
    "PL": ((TABLE_START, 2300),),
    "PT": ((TABLE_START, 2300),),
    "RO": ((TABLE_START, 1900), (date(2025, 8, 1), 2100)),
    "SE": ((TABLE_START, 2500),),
    "SI": ((TABLE_START, 2200),),
    "SK": ((TABLE_START, 2000), (date(2025, 1, 1), 2300)),
})  # fmt: skip

#: The 27 member states by ISO 3166-1 alpha-2 code (Greece is ``GR``; ``EL`` is its VAT prefix).
EU_COUNTRIES: Final = frozenset(STANDARD_RATES)

REVERSE_CHARGE_MENTION: Final = (
    "Reverse charge: VAT to be accounted for by the recipient "
    "(Article 196, Council Directive 2006/112/EC)"
)

# Every officially assigned ISO 3166-1 alpha-2 code. Territories outside the EU VAT area (Åland AX,
# Guadeloupe GP, Réunion RE, ...) have codes of their own, so they count as outside the EU here.
_ISO_COUNTRIES: Final = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW""".split()
)

# Greece is the one member state whose VAT prefix is not its ISO code.
_VAT_PREFIX: Final = {country: "EL" if country == "GR" else country for country in EU_COUNTRIES}
_PREFIX_COUNTRY: Final = {prefix: country for country, prefix in _VAT_PREFIX.items()}

# For messages only: "… is not a valid French VAT number … e.g. FR40303265045".
_ADJECTIVE: Final = {
    "AT": "Austrian", "BE": "Belgian", "BG": "Bulgarian", "CY": "Cypriot", "CZ": "Czech",
    "DE": "German", "DK": "Danish", "EE": "Estonian", "ES": "Spanish", "FI": "Finnish",
    "FR": "French", "GR": "Greek", "HR": "Croatian", "HU": "Hungarian", "IE": "Irish",
    "IT": "Italian", "LT": "Lithuanian", "LU": "Luxembourg", "LV": "Latvian", "MT": "Maltese",
    "NL": "Dutch", "PL": "Polish", "PT": "Portuguese", "RO": "Romanian", "SE": "Swedish",
    "SI": "Slovenian", "SK": "Slovak",
}  # fmt: skip
# Well-formed numbers (python-stdnum's own documented examples) shown as a model in messages.
_EXAMPLE: Final = {
    "AT": "ATU13585627", "BE": "BE0428759497", "BG": "BG175074752", "CY": "CY10259033P",
    "CZ": "CZ25123891", "DE": "DE136695976", "DK": "DK13585628", "EE": "EE100594102",
    "ES": "ESB64717838", "FI": "FI20774740", "FR": "FR40303265045", "GR": "EL094259216",
    "HR": "HR33392005961", "HU": "HU12892312", "IE": "IE6433435OA", "IT": "IT00743110157",
    "LT": "LT119511515", "LU": "LU15027442", "LV": "LV40003521600", "MT": "MT11679112",
    "NL": "NL004495445B01", "PL": "PL8567346215", "PT": "PT501964843", "RO": "RO18547290",
    "SE": "SE123456789701", "SI": "SI50223054", "SK": "SK2022749619",
}  # fmt: skip


class TaxRule(StrEnum):
    """Why a sale is taxed the way it is; stored on invoice lines and shown to staff."""

    DOMESTIC = "domestic"
    EU_CONSUMER = "eu_consumer"
    REVERSE_CHARGE = "reverse_charge"
    OUTSIDE_EU = "outside_eu"


@dataclass(frozen=True, slots=True)
class TaxDecision:
    """The VAT treatment of one sale at one instant."""

    #: Rate in basis points (2000 = 20 %); 0 for reverse charge and outside the EU.
    rate_bp: int
    rule: TaxRule
    #: The customer's ISO 3166-1 alpha-2 country.
    country: str
    #: Text the invoice must carry: :data:`REVERSE_CHARGE_MENTION` when reverse charged, else None.
    mention: str | None


def _require_iso_country(country: str, role: str) -> None:
    if country not in _ISO_COUNTRIES:
        raise UnknownCountry(
            f"{country!r} is not a country code; give the {role}'s ISO 3166 code in two capital "
            f"letters, such as FR, DE or US{_greece_hint(country)}.",
            country=country,
        )


def _require_eu_country(country: str) -> None:
    if country in EU_COUNTRIES:
        return
    if country in _ISO_COUNTRIES:
        raise UnknownCountry(
            f"{country} is not an EU member state, so it has no EU VAT rate or VAT number; "
            "give one of the 27 member states' codes, such as FR or DE.",
            country=country,
        )
    raise UnknownCountry(
        f"{country!r} is not an EU country code; give the ISO 3166 code in two capital letters, "
        f"such as FR or DE{_greece_hint(country)}.",
        country=country,
    )


def _greece_hint(country: str) -> str:
    # EL is what Greek VAT numbers start with, so people type it as the country too.
    return " (Greece is GR; EL is only its VAT prefix)" if country.upper() == "EL" else ""


def standard_rate(country: str, at: datetime) -> int:
    """Standard VAT rate of EU member state ``country`` in force at ``at``, in basis points.

    ``at`` is an aware UTC instant; a rate change applies from 00:00 UTC of its day. Raises
    :class:`UnknownCountry` for a country that is not a member state and for an instant before
    :data:`TABLE_START`.
    """
    require_utc(at, "tax instant")
    _require_eu_country(country)
    rows = STANDARD_RATES[country]
    index = bisect_right(rows, at.date(), key=lambda row: row[0])
    if index == 0:
        raise UnknownCountry(
            f"No VAT rate is recorded for {country} before {TABLE_START.isoformat()} "
            f"(asked for {at.isoformat()}); give an instant from {TABLE_START.isoformat()} on.",
            country=country,
            at=at.isoformat(),
        )
    return rows[index - 1][1]


def vat_country(vat_number: str) -> str:
    """ISO 3166 country of a normalised VAT number: ``"FR4030…"`` → ``"FR"``, ``"EL…"`` → ``"GR"``.

    Only the prefix is read; normalise with :func:`normalize_vat_number` first.
    """
    country = _PREFIX_COUNTRY.get(vat_number[:2])
    if country is None:
        raise InvalidVatNumber(
            f"{vat_number} does not start with the VAT prefix of an EU member state; write the "
            "two-letter prefix first (EL for Greece), e.g. FR40303265045.",
            vat_number=vat_number,
        )
    return country


def normalize_vat_number(raw: str, country: str | None = None) -> str:
    """The compact, upper-case form of an EU VAT number with its prefix: ``"fr 40.303-265.045"`` →
    ``"FR40303265045"``, ``"094259216"`` with ``country="GR"`` → ``"EL094259216"``.

    Spaces, dots, dashes and lower case are accepted. ``country`` (ISO, an EU member state) supplies
    the prefix when ``raw`` has none; a number that carries another member state's prefix keeps it
    (:func:`tax_decision` checks that it matches the customer's country). ``GR`` is accepted as a
    prefix and written ``EL``. Format and check digit are validated with python-stdnum, offline.
    Raises :class:`InvalidVatNumber` for an empty, unprefixed, unknown-prefix, malformed or
    wrong-check-digit number, and :class:`UnknownCountry` if ``country`` is not a member state.
    """
    if country is not None:
        _require_eu_country(country)
    shown = raw.strip()
    compact = "".join(raw.split()).replace(".", "").replace("-", "").upper()
    if not compact:
        raise InvalidVatNumber(
            "The VAT number is empty; enter it with its country prefix, e.g. "
            f"{_EXAMPLE[country or 'FR']}, or leave the field out if there is none.",
            vat_number=raw,
        )
    head = compact[:2]
    prefixed = "GR" if head == "GR" else _PREFIX_COUNTRY.get(head)
    # A national number may itself begin with two letters that look like a prefix (the French key
    # of FRPT303265045 is "PT"), so with a country given both readings are tried, prefix first.
    readings: list[tuple[str, str]] = []
    if prefixed is not None:
        readings.append((prefixed, compact[2:]))
    if country is not None and prefixed != country:
        readings.append((country, compact))
    for reading_country, national in readings:
        prefix = _VAT_PREFIX[reading_country]
        try:
            return stdnum_vat.validate(prefix + national)
        except StdnumValidationError:
            continue
    blamed = prefixed or country
    if blamed is None:
        raise InvalidVatNumber(
            f"{shown} does not start with the VAT prefix of an EU member state; write the "
            "two-letter prefix first (EL for Greece), e.g. FR40303265045.",
            vat_number=shown,
        )
    raise InvalidVatNumber(
        f"{shown} is not a valid {_ADJECTIVE[blamed]} VAT number: check the digits, "
        f"e.g. {_EXAMPLE[blamed]}.",
        vat_number=shown,
        country=blamed,
    )


def tax_decision(
    *, seller_country: str, customer_country: str, customer_vat_number: str | None, at: datetime
) -> TaxDecision:
    """How a sale from ``seller_country`` to a customer is taxed at the UTC instant ``at``.

    Countries are ISO 3166-1 alpha-2 codes (:class:`UnknownCountry` otherwise). Outside the EU: 0 %,
    and any VAT number is ignored. In the EU, ``customer_vat_number`` (``None`` when the customer
    gave none) is normalised and validated, and must belong to ``customer_country``
    (:class:`InvalidVatNumber` otherwise); with a VAT number of another member state than the
    seller's, the sale is reverse charged (0 % and the mention). A customer in the seller's own
    country pays that country's standard rate, VAT number or not; any other EU customer pays their
    country's standard rate.
    """
    require_utc(at, "tax instant")
    _require_iso_country(seller_country, "seller")
    _require_iso_country(customer_country, "customer")
    if customer_country not in EU_COUNTRIES:
        return TaxDecision(0, TaxRule.OUTSIDE_EU, customer_country, None)
    if customer_vat_number is not None:
        number = normalize_vat_number(customer_vat_number, customer_country)
        number_country = vat_country(number)
        if number_country != customer_country:
            shown = customer_vat_number.strip()
            raise InvalidVatNumber(
                f"{shown} is a {_ADJECTIVE[number_country]} VAT number, but "
                f"the customer's country is {customer_country}; enter the customer's "
                f"{_ADJECTIVE[customer_country]} VAT number or correct the country.",
                vat_number=shown,
                country=customer_country,
            )
        if customer_country != seller_country:
            return TaxDecision(0, TaxRule.REVERSE_CHARGE, customer_country, REVERSE_CHARGE_MENTION)
    rule = TaxRule.DOMESTIC if customer_country == seller_country else TaxRule.EU_CONSUMER
    return TaxDecision(standard_rate(customer_country, at), rule, customer_country, None)


def tax_amount(amount: Money, rate_bp: int) -> Money:
    """VAT on ``amount`` at ``rate_bp`` basis points: ``amount × rate_bp / 10000``, same currency.

    Rounded once, half away from zero, to the minor unit, so ``tax_amount(-x) == -tax_amount(x)``
    (a credit's tax mirrors the charge's): 186.29 EUR at 2000 → 37.26, -186.29 → -37.26.
    """
    if type(rate_bp) is not int or rate_bp < 0:
        raise ValueError(
            f"rate_bp must be a non-negative whole number of basis points, got {rate_bp!r}"
        )
    return Money(round_half_away(amount.amount * rate_bp, BASIS_POINTS), amount.currency)
