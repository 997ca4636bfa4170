import pytest

from prorata_core.errors import ValidationError
from prorata_core.numbering import CREDIT_NOTE_SERIES, INVOICE_SERIES, format_number, parse_number


def test_numbers_are_written_per_series_and_year():
    assert format_number(INVOICE_SERIES, 2026, 123) == "2026-000123"
    assert format_number(CREDIT_NOTE_SERIES, 2026, 7) == "CN-2026-000007"
    assert format_number(INVOICE_SERIES, 2026, 1234567) == "2026-1234567"


def test_numbers_read_back():
    assert parse_number("2026-000123") == ("", 2026, 123)
    assert parse_number("CN-2026-000007") == ("CN-", 2026, 7)


@pytest.mark.parametrize(("year", "counter"), [(2026, 0), (99, 1)])
def test_impossible_numbers_are_refused(year, counter):
    with pytest.raises(ValidationError):
        format_number(INVOICE_SERIES, year, counter)


def test_garbage_is_not_a_number():
    with pytest.raises(ValidationError) as refused:
        parse_number("INV 12")
    assert "2026-000123" in refused.value.message
