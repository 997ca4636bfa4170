from dataclasses import FrozenInstanceError
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.eu import vat as stdnum_vat

from prorata_core.errors import InvalidInstant, InvalidVatNumber, UnknownCountry
from prorata_core.money import Money
from prorata_core.periods import utc
from prorata_core.tax import (
    EU_COUNTRIES,
    REVERSE_CHARGE_MENTION,
    STANDARD_RATES,
    TaxDecision,
    TaxRule,
    normalize_vat_number,
    standard_rate,
    tax_amount,
    tax_decision,
    vat_country,
)

NOW = utc(2026, 3, 11)  # DESIGN §3 example 2's change instant

# One valid number per member state, each checked with stdnum.eu.vat.is_valid (see the test below).
VALID_VAT = {
    "AT": "ATU13585627", "BE": "BE0428759497", "BG": "BG175074752", "CY": "CY10259033P",
    "CZ": "CZ25123891", "DE": "DE136695976", "DK": "DK13585628", "EE": "EE100594102",
    "ES": "ESB64717838", "FI": "FI20774740", "FR": "FR40303265045", "GR": "EL094259216",
    "HR": "HR33392005961", "HU": "HU12892312", "IE": "IE6433435OA", "IT": "IT00743110157",
    "LT": "LT119511515", "LU": "LU15027442", "LV": "LV40003521600", "MT": "MT11679112",
    "NL": "NL004495445B01", "PL": "PL8567346215", "PT": "PT501964843", "RO": "RO18547290",
    "SE": "SE123456789701", "SI": "SI50223054", "SK": "SK2022749619",
}  # fmt: skip

CURRENT_RATES = {
    "AT": 2000, "BE": 2100, "BG": 2000, "HR": 2500, "CY": 1900, "CZ": 2100, "DK": 2500,
    "EE": 2400, "FI": 2550, "FR": 2000, "DE": 1900, "GR": 2400, "HU": 2700, "IE": 2300,
    "IT": 2200, "LV": 2100, "LT": 2100, "LU": 1700, "MT": 1800, "NL": 2100, "PL": 2300,
    "PT": 2300, "RO": 2100, "SK": 2300, "SI": 2200, "ES": 2100, "SE": 2500,
}  # fmt: skip

# (country, first day of the new rate, rate the day before, rate from that day)
RATE_CHANGES = [
    ("DE", date(2020, 7, 1), 1900, 1600),
    ("IE", date(2020, 9, 1), 2300, 2100),
    ("DE", date(2021, 1, 1), 1600, 1900),
    ("IE", date(2021, 3, 1), 2100, 2300),
    ("LU", date(2023, 1, 1), 1700, 1600),
    ("EE", date(2024, 1, 1), 2000, 2200),
    ("LU", date(2024, 1, 1), 1600, 1700),
    ("FI", date(2024, 9, 1), 2400, 2550),
    ("SK", date(2025, 1, 1), 2000, 2300),
    ("EE", date(2025, 7, 1), 2200, 2400),
    ("RO", date(2025, 8, 1), 1900, 2100),
]


def midnight(day: date) -> datetime:
    return utc(day.year, day.month, day.day)


# --- the rate table -------------------------------------------------------------------------------


def test_eu_countries_are_the_27_member_states_with_greece_as_gr():
    assert len(EU_COUNTRIES) == 27
    assert set(CURRENT_RATES) == EU_COUNTRIES
    assert "GR" in EU_COUNTRIES
    assert "EL" not in EU_COUNTRIES
    assert "GB" not in EU_COUNTRIES


def test_every_member_state_has_rows_from_2020_in_date_order():
    assert set(STANDARD_RATES) == EU_COUNTRIES
    for rows in STANDARD_RATES.values():
        days = [valid_from for valid_from, _ in rows]
        assert days[0] == date(2020, 1, 1)
        assert days == sorted(set(days))
        assert all(type(rate_bp) is int and 0 < rate_bp < 10_000 for _, rate_bp in rows)


def test_the_table_holds_exactly_the_known_changes_since_2020():
    recorded = sorted(
        (valid_from, country)
        for country, rows in STANDARD_RATES.items()
        for valid_from, _ in rows[1:]
    )
    assert recorded == sorted((day, country) for country, day, _, _ in RATE_CHANGES)


@pytest.mark.parametrize(("country", "rate_bp"), sorted(CURRENT_RATES.items()))
def test_current_standard_rate(country, rate_bp):
    assert standard_rate(country, NOW) == rate_bp


def test_finland_rate_has_a_half_percent():
    # 25.5 % is 2550 basis points
    assert standard_rate("FI", utc(2026, 1, 1)) == 2550


@pytest.mark.parametrize(("country", "day", "before", "after"), RATE_CHANGES)
def test_rate_change_applies_from_midnight_utc_of_its_day(country, day, before, after):
    # Given a rate change on `day`
    first_instant = midnight(day)
    # Then the day before still has the old rate, up to its last second
    assert standard_rate(country, first_instant - timedelta(hours=12)) == before
    assert standard_rate(country, first_instant - timedelta(seconds=1)) == before
    # And the new rate applies from 00:00 UTC of the day itself
    assert standard_rate(country, first_instant) == after
    assert standard_rate(country, first_instant + timedelta(hours=23, minutes=59)) == after


def test_table_starts_on_1_january_2020():
    assert standard_rate("FR", utc(2020, 1, 1)) == 2000
    with pytest.raises(UnknownCountry) as caught:
        standard_rate("FR", utc(2019, 12, 31, 23, 59, 59))
    assert caught.value.code == "unknown_country"
    assert "2020-01-01" in caught.value.message


@pytest.mark.parametrize("country", ["US", "GB", "CH", "ZZ", "fr", "FRA", "", "EU"])
def test_standard_rate_refuses_what_is_not_a_member_state(country):
    with pytest.raises(UnknownCountry) as caught:
        standard_rate(country, NOW)
    assert caught.value.code == "unknown_country"
    assert country in caught.value.message
    assert caught.value.params == {"country": country}


def test_greece_as_el_gets_a_hint_to_use_gr():
    with pytest.raises(UnknownCountry) as caught:
        standard_rate("EL", NOW)
    assert "Greece is GR" in caught.value.message


@pytest.mark.parametrize(
    "instant", [datetime(2026, 3, 11), datetime(2026, 3, 11, tzinfo=timezone(timedelta(hours=1)))]
)
def test_standard_rate_needs_a_utc_instant(instant):
    with pytest.raises(InvalidInstant):
        standard_rate("FR", instant)


# --- tax decisions (DESIGN §3 "Tax") --------------------------------------------------------------


def decide(customer_country, customer_vat_number=None, *, seller_country="FR", at=NOW):
    return tax_decision(
        seller_country=seller_country,
        customer_country=customer_country,
        customer_vat_number=customer_vat_number,
        at=at,
    )


def test_domestic_customer_pays_the_seller_countrys_rate():
    # Given a French seller and a French customer without a VAT number
    decision = decide("FR")
    # Then French VAT applies
    assert decision == TaxDecision(rate_bp=2000, rule=TaxRule.DOMESTIC, country="FR", mention=None)


def test_domestic_business_with_a_vat_number_still_pays_vat():
    decision = decide("FR", "FR 40 303 265 045")
    assert decision == TaxDecision(2000, TaxRule.DOMESTIC, "FR", None)


def test_eu_consumer_pays_their_own_countrys_rate():
    # Given a French seller and a German consumer (no VAT number)
    decision = decide("DE")
    # Then German VAT applies
    assert decision == TaxDecision(1900, TaxRule.EU_CONSUMER, "DE", None)


def test_eu_consumer_rate_follows_the_date():
    assert decide("DE", at=utc(2020, 8, 15)).rate_bp == 1600
    assert decide("FI", at=utc(2024, 8, 31, 23, 59, 59)).rate_bp == 2400
    assert decide("FI", at=utc(2024, 9, 1)).rate_bp == 2550


def test_eu_business_of_another_country_is_reverse_charged():
    # Given a French seller and a German customer with a valid German VAT number
    decision = decide("DE", "DE136695976")
    # Then no VAT is charged and the invoice carries the reverse-charge mention
    assert decision == TaxDecision(0, TaxRule.REVERSE_CHARGE, "DE", REVERSE_CHARGE_MENTION)
    assert decision.mention == (
        "Reverse charge: VAT to be accounted for by the recipient "
        "(Article 196, Council Directive 2006/112/EC)"
    )


def test_greek_business_is_reverse_charged_with_its_el_number_or_without_prefix():
    expected = TaxDecision(0, TaxRule.REVERSE_CHARGE, "GR", REVERSE_CHARGE_MENTION)
    assert decide("GR", "EL094259216") == expected
    assert decide("GR", "094 259 216") == expected


def test_customer_outside_the_eu_pays_no_vat():
    # Given a French seller and a customer in the United States
    decision = decide("US")
    # Then no VAT is charged and there is no mention
    assert decision == TaxDecision(0, TaxRule.OUTSIDE_EU, "US", None)


def test_vat_number_of_a_customer_outside_the_eu_is_not_checked():
    assert decide("GB", "GB 123 4567 89") == TaxDecision(0, TaxRule.OUTSIDE_EU, "GB", None)


def test_outside_eu_does_not_depend_on_the_rate_table():
    assert decide("US", at=utc(2010, 1, 1)).rule is TaxRule.OUTSIDE_EU


def test_vat_number_of_another_country_than_the_customers_is_refused():
    # Given a customer in France who enters a German VAT number
    with pytest.raises(InvalidVatNumber) as caught:
        decide("FR", "DE136695976", seller_country="DE")
    # Then the number is refused, saying which country it belongs to
    assert caught.value.code == "invalid_vat_number"
    assert caught.value.message == (
        "DE136695976 is a German VAT number, but the customer's country is FR; enter the "
        "customer's French VAT number or correct the country."
    )


def test_invalid_vat_number_is_refused_in_a_decision():
    with pytest.raises(InvalidVatNumber) as caught:
        decide("DE", "DE136695978")
    assert "DE136695978" in caught.value.message


def test_eu_consumer_before_the_table_starts_is_refused():
    with pytest.raises(UnknownCountry):
        decide("DE", at=utc(2019, 6, 1))


@pytest.mark.parametrize(
    ("seller", "customer"), [("ZZ", "FR"), ("FR", "ZZ"), ("FR", "fr"), ("FR", "USA"), ("FR", "EL")]
)
def test_decision_refuses_unknown_country_codes(seller, customer):
    with pytest.raises(UnknownCountry) as caught:
        decide(customer, seller_country=seller)
    assert caught.value.code == "unknown_country"
    bad = seller if seller == "ZZ" else customer
    assert repr(bad) in caught.value.message


def test_decision_needs_a_utc_instant():
    with pytest.raises(InvalidInstant):
        decide("US", at=datetime(2026, 3, 11))


def test_decision_is_a_frozen_value():
    decision = decide("FR")
    with pytest.raises(FrozenInstanceError):
        decision.rate_bp = 0  # type: ignore[misc]


def test_rules_are_stored_as_plain_strings():
    assert [rule.value for rule in TaxRule] == [
        "domestic",
        "eu_consumer",
        "reverse_charge",
        "outside_eu",
    ]
    assert TaxRule.REVERSE_CHARGE == "reverse_charge"


# --- VAT numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("country", "number"), sorted(VALID_VAT.items()))
def test_a_valid_number_of_every_member_state_is_kept_and_mapped_to_its_country(country, number):
    assert stdnum_vat.is_valid(number)
    assert normalize_vat_number(number) == number
    assert normalize_vat_number(number.lower(), country) == number
    assert normalize_vat_number(number[2:], country) == number
    assert vat_country(number) == country


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("FR 40 303 265 045", None, "FR40303265045"),
        ("fr40.303.265.045", None, "FR40303265045"),
        ("FR-40-303-265-045", None, "FR40303265045"),
        ("  Fr 40303265045\t", None, "FR40303265045"),
        ("40 303 265 045", "FR", "FR40303265045"),
        ("de 136.695.976", None, "DE136695976"),
        ("136695976", "DE", "DE136695976"),
        ("EL 094 259 216", None, "EL094259216"),
        ("el094259216", "GR", "EL094259216"),
        ("094259216", "GR", "EL094259216"),
        ("GR 094 259 216", None, "EL094259216"),
        ("BE 428.759.497", None, "BE0428759497"),
        ("nl 0044.95.445.b01", None, "NL004495445B01"),
        ("atu13585627", None, "ATU13585627"),
    ],
)
def test_normalize_accepts_spaces_dots_dashes_lower_case_and_a_missing_prefix(
    raw, country, expected
):
    assert normalize_vat_number(raw, country) == expected


def test_a_number_with_another_countrys_prefix_keeps_it():
    # The country only fills in a missing prefix; tax_decision checks that the countries match.
    assert normalize_vat_number("DE136695976", "FR") == "DE136695976"


def test_a_french_key_that_looks_like_a_prefix_is_read_as_french():
    # Given a French number whose two-letter key "PT" is also Portugal's prefix
    assert not stdnum_vat.is_valid("PT303265045")
    # Then, for a French customer, it is read as a French number without its prefix
    assert normalize_vat_number("PT303265045", "FR") == "FRPT303265045"


@pytest.mark.parametrize(
    ("raw", "country", "message"),
    [
        ("FR123", None,
         "FR123 is not a valid French VAT number: check the digits, e.g. FR40303265045."),
        ("FR40303265046", None,
         "FR40303265046 is not a valid French VAT number: check the digits, e.g. FR40303265045."),
        ("DE 136 695 978", "DE",
         "DE 136 695 978 is not a valid German VAT number: check the digits, e.g. DE136695976."),
        ("094259217", "GR",
         "094259217 is not a valid Greek VAT number: check the digits, e.g. EL094259216."),
        ("PT303265045", None,
         "PT303265045 is not a valid Portuguese VAT number: check the digits, e.g. PT501964843."),
        ("garbage!", "IT",
         "garbage! is not a valid Italian VAT number: check the digits, e.g. IT00743110157."),
        ("hello world", None,
         "hello world does not start with the VAT prefix of an EU member state; write the "
         "two-letter prefix first (EL for Greece), e.g. FR40303265045."),
        ("136695976", None,
         "136695976 does not start with the VAT prefix of an EU member state; write the "
         "two-letter prefix first (EL for Greece), e.g. FR40303265045."),
        ("GB123456789", None,
         "GB123456789 does not start with the VAT prefix of an EU member state; write the "
         "two-letter prefix first (EL for Greece), e.g. FR40303265045."),
        ("XI123456782", None,
         "XI123456782 does not start with the VAT prefix of an EU member state; write the "
         "two-letter prefix first (EL for Greece), e.g. FR40303265045."),
    ],
)  # fmt: skip
def test_invalid_vat_numbers_are_refused_with_the_input_in_the_message(raw, country, message):
    with pytest.raises(InvalidVatNumber) as caught:
        normalize_vat_number(raw, country)
    assert caught.value.code == "invalid_vat_number"
    assert caught.value.message == message
    assert raw in caught.value.message
    assert caught.value.params["vat_number"] == raw


@pytest.mark.parametrize(("raw", "country"), [("", None), ("   ", "DE"), (" . - ", None)])
def test_an_empty_vat_number_is_refused(raw, country):
    with pytest.raises(InvalidVatNumber) as caught:
        normalize_vat_number(raw, country)
    assert caught.value.code == "invalid_vat_number"
    assert "empty" in caught.value.message
    assert VALID_VAT[country or "FR"] in caught.value.message


@pytest.mark.parametrize("country", ["US", "EL", "ZZ"])
def test_normalize_refuses_a_country_that_is_not_a_member_state(country):
    with pytest.raises(UnknownCountry) as caught:
        normalize_vat_number("123456789", country)
    assert caught.value.code == "unknown_country"


@pytest.mark.parametrize("number", ["GB123456789", "GR094259216", "", "fr40303265045"])
def test_vat_country_needs_a_normalised_eu_number(number):
    with pytest.raises(InvalidVatNumber) as caught:
        vat_country(number)
    assert caught.value.code == "invalid_vat_number"


@given(st.text(max_size=20), st.sampled_from([None, *sorted(EU_COUNTRIES)]))
def test_normalize_returns_a_valid_fixed_point_or_refuses(raw, country):
    try:
        number = normalize_vat_number(raw, country)
    except InvalidVatNumber:
        return
    assert stdnum_vat.is_valid(number)
    assert normalize_vat_number(number) == number
    assert vat_country(number) in EU_COUNTRIES


# --- tax amounts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "rate_bp", "expected"),
    [
        # DESIGN §3 example 2: credit 186.29 + VAT 37.26 (37.258), charge 165.00 + VAT 33.00
        (Money(18629, "EUR"), 2000, Money(3726, "EUR")),
        (Money(-18629, "EUR"), 2000, Money(-3726, "EUR")),
        (Money(16500, "EUR"), 2000, Money(3300, "EUR")),
        (Money(27500, "EUR"), 2000, Money(5500, "EUR")),
        # halves go away from zero: 0.25 × 10 % = 0.025 → 0.03
        (Money(25, "EUR"), 1000, Money(3, "EUR")),
        (Money(-25, "EUR"), 1000, Money(-3, "EUR")),
        (Money(1, "EUR"), 5000, Money(1, "EUR")),
        (Money(-1, "EUR"), 5000, Money(-1, "EUR")),
        # just under and over a half
        (Money(24, "EUR"), 1000, Money(2, "EUR")),
        (Money(26, "EUR"), 1000, Money(3, "EUR")),
        # 25.5 %: 100.10 × 0.255 = 25.5255 → 25.53
        (Money(10010, "EUR"), 2550, Money(2553, "EUR")),
        (Money(1000, "JPY"), 1000, Money(100, "JPY")),
        (Money(99999, "USD"), 0, Money(0, "USD")),
    ],
)
def test_tax_amount_is_rounded_once_half_away_from_zero(amount, rate_bp, expected):
    assert tax_amount(amount, rate_bp) == expected


@pytest.mark.parametrize("rate_bp", [-1, 20.0, True, "2000"])
def test_tax_amount_refuses_a_rate_that_is_not_whole_basis_points(rate_bp):
    with pytest.raises(ValueError):
        tax_amount(Money(100, "EUR"), rate_bp)


@given(st.integers(-(10**12), 10**12), st.integers(0, 10_000))
def test_tax_amount_is_symmetric_and_within_half_a_minor_unit(minor, rate_bp):
    amount = Money(minor, "EUR")
    tax = tax_amount(amount, rate_bp)
    assert tax.currency == "EUR"
    assert tax_amount(-amount, rate_bp) == -tax
    # |tax - minor × rate / 10000| ≤ 1/2, kept in integers
    assert abs(tax.amount * 10_000 - minor * rate_bp) <= 5_000
