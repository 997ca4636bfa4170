"""Money as an integer count of minor units with an ISO 4217 currency.

No float ever holds an amount. Arithmetic between two currencies is refused. There is exactly one
rounding rule, :func:`round_half_away`, applied once per invoice line (DESIGN §3). Locale formatting
belongs to the web layer, not here; :meth:`Money.as_decimal_string` is the canonical plain form used by
the API and the tests ("2985.86").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from prorata_core.errors import CurrencyMismatch, InvalidAmount, UnknownCurrency

#: Minor-unit exponent of every active ISO 4217 currency that is not the usual 2.
_EXPONENT_NOT_TWO = {
    # no minor unit
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    # thousandths
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    # ten-thousandths
    "CLF": 4, "UYW": 4,
}  # fmt: skip
#: Active ISO 4217 currencies with two decimals.
_EXPONENT_TWO = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN
    BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL
    GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD
    LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN
    PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB
    TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG""".split()
)

_KNOWN = _EXPONENT_TWO | frozenset(_EXPONENT_NOT_TWO)

# ASCII digits only: ``\d`` would also read Arabic-Indic or Devanagari digits as an amount.
_DECIMAL = re.compile(r"^(-?)([0-9]+)(?:\.([0-9]+))?\Z")


def currency_exponent(currency: str) -> int:
    """Number of decimal places of ``currency``'s minor unit (USD 2, JPY 0, KWD 3)."""
    exponent = _EXPONENT_NOT_TWO.get(currency)
    if exponent is not None:
        return exponent
    if currency in _EXPONENT_TWO:
        return 2
    raise UnknownCurrency(
        f"{currency!r} is not an ISO 4217 currency code; use three capital letters such as USD or EUR.",
        currency=currency,
    )


def round_half_away(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to the nearest integer, halves away from zero.

    The project's only rounding rule (DESIGN §3): 0.5 → 1, -0.5 → -1, 2.5 → 3. ``denominator`` > 0.
    """
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An exact amount: ``amount`` minor units (cents for USD/EUR) of ``currency``.

    Build it with :meth:`of` from a decimal string, or directly from minor units.
    """

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if type(self.amount) is not int:
            raise InvalidAmount(
                f"Amounts are whole minor units (cents), got {self.amount!r}.", amount=repr(self.amount)
            )
        # A set look-up first: every order builds a dozen amounts, most of them in USD or EUR.
        if self.currency not in _KNOWN:
            currency_exponent(self.currency)

    @classmethod
    def of(cls, text: str, currency: str) -> Money:
        """Parse ``"2376.00"`` (major units, dot decimal, no grouping) into minor units exactly.

        More decimals than the currency has is an error rather than a silent rounding.
        """
        exponent = currency_exponent(currency)
        match = _DECIMAL.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise InvalidAmount(
                f"{text!r} is not an amount; write it like 1234.50 (digits, optional dot and decimals).",
                amount=repr(text),
            )
        sign, whole, decimals = match.group(1), match.group(2), match.group(3) or ""
        if len(decimals) > exponent:
            raise InvalidAmount(
                f"{text!r} has more decimals than {currency} allows ({exponent}).",
                amount=text,
                currency=currency,
            )
        minor = int(whole) * 10**exponent + (int(decimals.ljust(exponent, "0")) if exponent else 0)
        return cls(-minor if sign else minor, currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(
                f"Cannot combine {self.currency} and {other.currency} amounts.",
                left=self.currency,
                right=other.currency,
            )

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __abs__(self) -> Money:
        return Money(abs(self.amount), self.currency)

    def __mul__(self, factor: int) -> Money:
        if type(factor) is not int:
            raise InvalidAmount("Money is multiplied by whole numbers only; use scaled() for ratios.")
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def __bool__(self) -> bool:
        return self.amount != 0

    def scaled(self, ratio: Fraction) -> Money:
        """This amount × ``ratio``, rounded once, half away from zero, to the minor unit."""
        return Money(
            round_half_away(self.amount * ratio.numerator, ratio.denominator), self.currency
        )

    def min(self, other: Money) -> Money:
        return self if self <= other else other

    def as_decimal_string(self) -> str:
        """Canonical plain form: ``"-25.55"``, ``"1790.14"``, ``"1000"`` for JPY. No grouping."""
        exponent = currency_exponent(self.currency)
        sign = "-" if self.amount < 0 else ""
        digits = str(abs(self.amount)).rjust(exponent + 1, "0")
        if exponent == 0:
            return sign + digits
        return f"{sign}{digits[:-exponent]}.{digits[-exponent:]}"

    def __str__(self) -> str:
        return f"{self.as_decimal_string()} {self.currency}"


def total(amounts: list[Money] | tuple[Money, ...], currency: str) -> Money:
    """Exact sum of ``amounts`` (all in ``currency``); zero for an empty sequence."""
    result = 0
    for money in amounts:
        if money.currency != currency:
            raise CurrencyMismatch(
                f"Cannot combine {currency} and {money.currency} amounts.",
                left=currency,
                right=money.currency,
            )
        result += money.amount
    return Money(result, currency)
