"""The billing history as CSV, streamed (issue 16): web and API share :func:`history_csv`.

Amounts are exact decimal strings in major units (``1790.14``, never a float), instants ISO 8601
UTC, one row per invoice or credit note with its status (:mod:`prorata.billing.history`). The rows
are produced one chunk at a time and encoded as they go: the response never holds the file.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from prorata.accounts.models import Account
from prorata.billing.history import document_history_export
from prorata_core.money import currency_exponent

HEADER = ("issued_at", "type", "number", "status", "currency", "subtotal", "tax", "total",
          "credit_applied", "amount_paid", "amount_due")


class _Echo:
    """A file whose ``write`` returns what it was given: csv.writer then yields lines."""

    def write(self, value: str) -> str:
        return value


def _major(amount: int, exponent: int) -> str:
    return str(Decimal(amount).scaleb(-exponent)) if exponent else str(amount)


def history_csv(
    *, account: Account, kinds: list[str] | None = None, statuses: list[str] | None = None,
    start: datetime | None = None, end: datetime | None = None,
) -> Iterator[bytes]:
    """The CSV lines (UTF-8 bytes, header first) of ``account``'s filtered documents."""
    writer = csv.writer(_Echo())
    yield writer.writerow(HEADER).encode()
    exponents: dict[str, int] = {}
    for row in document_history_export(account=account, kinds=kinds, statuses=statuses,
                                       start=start, end=end):
        (_pk, issued_at, kind, number, status, currency, *amounts) = row
        exponent = exponents.get(currency)
        if exponent is None:
            exponent = exponents[currency] = currency_exponent(currency)
        fields: list[Any] = [issued_at.astimezone(UTC).isoformat().replace("+00:00", "Z"), kind,
                             number, status, currency,
                             *(_major(int(amount), exponent) for amount in amounts)]
        yield writer.writerow(fields).encode()
