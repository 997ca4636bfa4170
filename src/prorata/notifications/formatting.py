"""Amounts and days for e-mails and documents, in the reader's language.

The billing center's formatting (:mod:`prorata.web.formatting`, Babel/CLDR: ``€1,790.14`` /
``1 790,14 €``, ``March 11, 2026`` / ``11 mars 2026``) when it is installed; otherwise a plain, exact
form: ``1790.14 EUR`` and Django's own date format for the language.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import formats, translation

from prorata_core.money import Money

try:
    from prorata.web import formatting as _web
except ImportError:  # pragma: no cover - the web app is part of the project; kept for the layering
    _web = None  # type: ignore[assignment]


def format_money(money: Money, language: str) -> str:
    """``money`` for a reader of ``language``, exactly (minor units through Decimal)."""
    if _web is not None:
        return _web.format_money(money, language)
    return str(money)  # pragma: no cover


def format_day(instant: datetime, language: str) -> str:
    """The UTC day of ``instant`` for a reader of ``language``."""
    if _web is not None:
        return _web.format_date(instant, language)
    with translation.override(language):  # pragma: no cover
        return formats.date_format(instant.astimezone(UTC).date(), "DATE_FORMAT")
