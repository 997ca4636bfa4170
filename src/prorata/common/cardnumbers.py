"""Card numbers typed where they do not belong (issue 18, PCI DSS 3.3.1/3.4.1): a customer who
pastes a card number into a support message, a name or an address must not have it stored,
e-mailed, logged or shown again. Card fields never reach Prorata (the gateway's own form
tokenises them); this is for every *other* text.

:func:`mask_card_numbers` is the one scrubber: each service that stores free text calls it on its
input, before the text reaches a row, an audit entry, an outbox context or a log record; the log
filter (:class:`prorata.common.requestlog.ContextFilter`) calls it on every record as a last guard.

What counts as a card number (the same shapes as the I11 invariant of the reliability suite):
13-19 digits in one run, or groups of 4 (the last 1-7) split by one space or dash each, or
American Express's 4-6-5, not inside a longer alphanumeric run (hashes, tokens, IBANs written
without spaces, VAT numbers with their country prefix), and passing the Luhn check. Anything
else is left exactly as typed: invoice numbers (``2026-000123``), phone numbers, amounts, a
16-digit number whose check digit is wrong. About one in ten arbitrary 13-19-digit numbers passes
the Luhn check, so an unrelated number of that shape is masked too (a grouped IBAN's digits, an
EAN-13 barcode): a decision, a masked number in a message is a lesser harm than a stored card.
"""

from __future__ import annotations

import re

#: A card number as people type it (see the module docstring).
CARD_NUMBER = re.compile(
    r"(?<![0-9A-Za-z])(?:\d{13,19}|\d{4}(?P<sep>[ -])\d{4}(?P=sep)\d{4}(?:(?P=sep)\d{1,7})?"
    r"|\d{4}[ -]\d{6}[ -]\d{5})(?![0-9A-Za-z])"
)


def luhn_valid(digits: str) -> bool:
    """Whether a string of decimal digits passes the Luhn check (a card number's last digit)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card_digits(match: re.Match[str]) -> str | None:
    digits = match.group(0).replace(" ", "").replace("-", "")
    # \d is any decimal digit: a number typed in Arabic-Indic digits is the same card.
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return digits
    return None


def masked(last4: str) -> str:
    """How a removed card number reads: its last four digits, closed by a bracket so that they
    can never join the digits after them into a new number."""
    return f"[•••• {last4}]"


def card_numbers_in(text: str) -> list[str]:
    """The card numbers in ``text``, each as its last four digits (for tests and checks)."""
    return [digits[-4:] for match in CARD_NUMBER.finditer(text)
            if (digits := _card_digits(match)) is not None]


def mask_card_numbers(text: str) -> str:
    """``text`` with every card number replaced by :func:`masked` of its last four digits; any
    other text, digits included, unchanged. Pure; safe on any ``str`` (an empty one too)."""
    if not text:
        return text

    def replace(match: re.Match[str]) -> str:
        digits = _card_digits(match)
        return match.group(0) if digits is None else masked(digits[-4:])

    return CARD_NUMBER.sub(replace, text)


def has_card_number(text: str) -> bool:
    """Whether :func:`mask_card_numbers` would change ``text``."""
    return bool(text) and mask_card_numbers(text) != text
