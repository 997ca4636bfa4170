from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from prorata_core.errors import ValidationError
from prorata_core.numbering import (
    CREDIT_NOTE_SERIES,
    INVOICE_SERIES,
    document_year,
    format_number,
    parse_number,
)


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


@pytest.mark.parametrize(("issued_at", "zone", "year"), [
    (datetime(2026, 12, 31, 22, 59, 59, tzinfo=UTC), "Europe/Paris", 2026),
    (datetime(2026, 12, 31, 23, 0, 0, tzinfo=UTC), "Europe/Paris", 2027),
    (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "Europe/Paris", 2027),
    (datetime(2027, 1, 1, 4, 59, 59, tzinfo=UTC), "America/New_York", 2026),
    (datetime(2027, 1, 1, 5, 0, 0, tzinfo=UTC), "America/New_York", 2027),
    (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "UTC", 2026),
])
def test_the_document_year_is_the_sellers(issued_at, zone, year):
    assert document_year(issued_at, ZoneInfo(zone)) == year
