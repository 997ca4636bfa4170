from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prorata_core.errors import CurrencyMismatch, InvalidAmount, UnknownCurrency
from prorata_core.money import Money, currency_exponent, round_half_away, total


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(5, 10, 1), (-5, 10, -1), (25, 10, 3), (-25, 10, -3), (24, 10, 2), (-24, 10, -2), (0, 7, 0),
     (14, 10, 1), (15, 10, 2), (16, 10, 2)],
)
def test_round_half_away_from_zero(numerator, denominator, expected):
    assert round_half_away(numerator, denominator) == expected


def test_round_refuses_non_positive_denominator():
    with pytest.raises(ValueError):
        round_half_away(1, 0)


@given(st.integers(-10**12, 10**12), st.integers(1, 10**9))
def test_rounding_is_within_half_a_unit_and_symmetric(numerator, denominator):
    rounded = round_half_away(numerator, denominator)
    assert abs(Fraction(numerator, denominator) - rounded) <= Fraction(1, 2)
    assert round_half_away(-numerator, denominator) == -rounded


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [("2376.00", "USD", 237600), ("2376", "USD", 237600), ("0.5", "EUR", 50), ("-25.55", "EUR", -2555),
     ("1000", "JPY", 1000), ("1.234", "KWD", 1234), (" 12.3 ", "USD", 1230)],
)
def test_parse_decimal_text_exactly(text, currency, minor):
    assert Money.of(text, currency) == Money(minor, currency)


@pytest.mark.parametrize("text", ["1.234", "abc", "1,000.00", "", "1e3", "--1"])
def test_parse_refuses_what_is_not_an_exact_amount(text):
    with pytest.raises(InvalidAmount) as caught:
        Money.of(text, "USD")
    assert caught.value.code == "invalid_amount"


def test_parse_refuses_non_text():
    with pytest.raises(InvalidAmount):
        Money.of(12.5, "USD")  # type: ignore[arg-type]


def test_floats_never_become_money():
    with pytest.raises(InvalidAmount):
        Money(12.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(InvalidAmount):
        Money(100, "USD") * 1.5  # type: ignore[operator]


def test_unknown_currency_is_refused_with_a_hint():
    with pytest.raises(UnknownCurrency) as caught:
        Money(1, "usd")
    assert "three capital letters" in caught.value.message
    assert caught.value.as_dict()["code"] == "unknown_currency"


def test_exponents():
    assert (currency_exponent("USD"), currency_exponent("JPY"), currency_exponent("KWD")) == (2, 0, 3)


def test_arithmetic_and_comparison_in_one_currency():
    a, b = Money(1000, "EUR"), Money(250, "EUR")
    assert a + b == Money(1250, "EUR")
    assert a - b == Money(750, "EUR")
    assert -a == Money(-1000, "EUR")
    assert abs(Money(-3, "EUR")) == Money(3, "EUR")
    assert a * 3 == 3 * a == Money(3000, "EUR")
    assert b < a and b <= a and a > b and a >= b
    assert a.min(b) == b and b.min(a) == b
    assert not Money.zero("EUR") and a


@pytest.mark.parametrize(
    "operation",
    [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a < b, lambda a, b: a <= b,
     lambda a, b: a > b, lambda a, b: a >= b],
)
def test_mixed_currencies_are_refused(operation):
    with pytest.raises(CurrencyMismatch) as caught:
        operation(Money(1, "EUR"), Money(1, "USD"))
    assert "EUR" in str(caught.value) and "USD" in str(caught.value)


def test_scaled_rounds_once_half_away():
    assert Money(237600, "USD").scaled(Fraction(275, 365)) == Money(179014, "USD")
    assert Money(-27500, "EUR").scaled(Fraction(21, 31)) == Money(-18629, "EUR")
    assert Money(5, "USD").scaled(Fraction(1, 10)) == Money(1, "USD")


@pytest.mark.parametrize(
    ("money", "text"),
    [(Money(298586, "USD"), "2985.86"), (Money(-2555, "EUR"), "-25.55"), (Money(5, "EUR"), "0.05"),
     (Money(1000, "JPY"), "1000"), (Money(-1, "KWD"), "-0.001")],
)
def test_canonical_text(money, text):
    assert money.as_decimal_string() == text
    assert str(money) == f"{text} {money.currency}"
    assert Money.of(text, money.currency) == money


def test_total_is_exact_and_checks_currency():
    assert total([Money(1, "USD"), Money(2, "USD")], "USD") == Money(3, "USD")
    assert total([], "USD") == Money(0, "USD")
    with pytest.raises(CurrencyMismatch):
        total([Money(1, "EUR")], "USD")
