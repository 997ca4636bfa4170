"""Invoice and credit-note numbers: gapless and sequential per series and year (DESIGN §3).

The counter itself lives in the database (one row per series and year, locked and incremented in the
transaction that finalises the document); this module only says how a number is written and read.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

from prorata_core.errors import ValidationError

#: Invoices are ``2026-000123``; credit notes ``CN-2026-000007``.
INVOICE_SERIES = ""
CREDIT_NOTE_SERIES = "CN-"

_NUMBER = re.compile(r"^([A-Z]{1,4}-)?(\d{4})-(\d{6,})$")


def format_number(series: str, year: int, counter: int) -> str:
    """The ``counter``-th document (1-based) of ``series`` in ``year``: ``CN-2026-000007``."""
    if counter < 1 or not 1970 <= year <= 9999:
        raise ValidationError(
            f"Document numbers start at 1 in a four-digit year; got {counter} in {year}.",
            year=year,
            counter=counter,
        )
    return f"{series}{year}-{counter:06d}"


def document_year(issued_at: datetime, zone: tzinfo) -> int:
    """The year whose series numbers a document issued at ``issued_at`` (aware): the year of that
    instant on the seller's calendar, in ``zone``. An invoice issued at 2026-12-31T23:30Z by a
    seller in Paris is dated 1 January 2027 there, so it is ``2027-…``; the year of the UTC
    instant would number it in 2026's series under a 2027 date."""
    return issued_at.astimezone(zone).year


def parse_number(number: str) -> tuple[str, int, int]:
    """``(series, year, counter)`` of a document number written by :func:`format_number`."""
    match = _NUMBER.match(number)
    if match is None:
        raise ValidationError(
            f"{number!r} is not a document number; they look like 2026-000123 or CN-2026-000007.",
            number=number,
        )
    return match.group(1) or "", int(match.group(2)), int(match.group(3))
