"""Helpers that lay the catalog out for people: feature names, prices grouped per plan and cycle."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import gettext_lazy as _

from prorata_core.catalog import BillingCycle, Catalog
from prorata_core.money import Money

FEATURE_LABELS = {
    "recording": _("Recording"),
    "custom_branding": _("Custom branding"),
    "webcasts": _("Webcasts"),
    "api_access": _("API access"),
    "dedicated_advisor": _("Dedicated advisor"),
}
_ORDER = {code: index for index, code in enumerate(FEATURE_LABELS)}


def feature_labels(codes: Iterable[str]) -> list[str]:
    """Labels of ``codes`` in the catalog's order; an unknown code is shown readably, last."""
    ordered = sorted(codes, key=lambda code: (_ORDER.get(code, len(_ORDER)), code))
    return [str(FEATURE_LABELS.get(code, code.replace("_", " ").capitalize())) for code in ordered]


def prices_by_plan_and_cycle(catalog: Catalog) -> dict[tuple[str, str], list[Money]]:
    """Each (plan, cycle)'s per-license prices, ordered by currency code."""
    grouped: dict[tuple[str, str], list[Money]] = {}
    for (plan_code, cycle_code, _currency), price in sorted(catalog.prices.items()):
        grouped.setdefault((plan_code, cycle_code), []).append(price.unit_amount)
    return grouped


def priced_cycles(catalog: Catalog) -> list[BillingCycle]:
    """The billing cycles that have at least one price, shortest first."""
    codes = {cycle_code for _plan, cycle_code, _currency in catalog.prices}
    return sorted((catalog.cycles[code] for code in codes), key=lambda c: (c.months, c.code))
