"""The public plans page (the home page)."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from prorata.accounts.models import Membership
from prorata.catalog.display import feature_labels, priced_cycles, prices_by_plan_and_cycle
from prorata.catalog.selectors import catalog_snapshot
from prorata.common.clock import MOVABLE, clock_mode, format_instant, now
from prorata_core.catalog import Catalog, Plan
from prorata_core.money import Money


@dataclass(frozen=True, slots=True)
class PriceRow:
    period: str  # "per license per month"
    amounts: list[Money]  # ordered by currency code; empty when not sold for that period


@dataclass(frozen=True, slots=True)
class PlanCard:
    plan: Plan
    features: list[str]
    prices: list[PriceRow]  # empty for advisor-priced plans ("Contact us")


@dataclass(frozen=True, slots=True)
class ProductSection:
    name: str
    plans: list[PlanCard]


def _per_period(months: int) -> str:
    if months == 1:
        return _("per license per month")
    if months == 12:
        return _("per license per year")
    if months == 3:
        return _("per license per quarter")
    return ngettext(
        "per license per %(count)d month", "per license per %(count)d months", months
    ) % {"count": months}


def _sections(catalog: Catalog) -> list[ProductSection]:
    prices = prices_by_plan_and_cycle(catalog)
    cycles = priced_cycles(catalog)
    sections = []
    for product in sorted(catalog.products.values(), key=lambda p: p.name):
        cards = [
            PlanCard(
                plan,
                feature_labels(plan.features),
                [
                    PriceRow(
                        _per_period(cycle.months),
                        prices.get((plan.code, cycle.code), []),
                    )
                    for cycle in cycles
                ]
                if plan.self_service
                else [],
            )
            for plan in catalog.plans_of(product.code)
        ]
        if cards:
            sections.append(ProductSection(product.name, cards))
    return sections


def home(request: HttpRequest) -> HttpResponse:
    """The site's address: a signed-in customer's billing center (My account), else the plans."""
    user = request.user
    if user.is_authenticated and Membership.objects.filter(user=user).exists():
        return redirect("billing:index")
    return plans(request)


def plans(request: HttpRequest) -> HttpResponse:
    """Every offered plan with its limits, features and prices; the project clock in the footer."""
    return render(
        request,
        "catalog/plans.html",
        {
            "sections": _sections(catalog_snapshot(active_only=True)),
            "clock_instant": format_instant(now()),
            "clock_movable": clock_mode() == MOVABLE,
        },
    )
