"""Amounts and days for e-mails and documents, in the reader's language: the billing center's
formatting (:mod:`prorata.common.formatting`, Babel/CLDR: ``€1,790.14`` / ``1 790,14 €``,
``March 11, 2026`` / ``11 mars 2026``), under the names the e-mail templates use.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from prorata.common import formatting
from prorata_core.money import Money


def format_money(money: Money, language: str) -> str:
    """``money`` for a reader of ``language``, exactly (minor units through Decimal)."""
    return formatting.format_money(money, language)


def format_day(instant: datetime, language: str, zone: tzinfo | None = None) -> str:
    """The day of ``instant`` in ``zone`` (default: the active time zone, UTC outside an
    account's pages) for a reader of ``language``."""
    return formatting.format_date(instant, language, zone)
