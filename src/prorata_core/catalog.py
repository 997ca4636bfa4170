"""Catalog values: what is sold, at which price per license per billing period.

These are plain immutable values; the Django ``catalog`` app stores them and builds a :class:`Catalog`
for the engine. Prices are per license per period, in minor units (DESIGN §2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from prorata_core.errors import InvalidLicenseCount, NotInCatalog
from prorata_core.money import Money


@dataclass(frozen=True, slots=True)
class BillingCycle:
    """A billing period length in calendar months (monthly 1, quarterly 3, annual 12)."""

    code: str
    months: int


MONTHLY = BillingCycle("monthly", 1)
QUARTERLY = BillingCycle("quarterly", 3)
ANNUAL = BillingCycle("annual", 12)


@dataclass(frozen=True, slots=True)
class Product:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Plan:
    """A plan of a product. A higher ``rank`` is an upgrade (DESIGN §2).

    ``trial_days`` is set only for a free trial, which is never sold: it is granted, then expires.
    ``self_service`` is false for advisor-priced plans (Enterprise), sold only by staff.
    License counts must lie in ``[min_licenses, max_licenses]``.
    """

    code: str
    product_code: str
    name: str
    rank: int
    participant_limit: int
    features: frozenset[str] = frozenset()
    trial_days: int | None = None
    self_service: bool = True
    min_licenses: int = 1
    max_licenses: int = 10_000

    @property
    def is_trial(self) -> bool:
        return self.trial_days is not None

    def check_licenses(self, quantity: int) -> None:
        """Refuse a license count outside ``[min_licenses, max_licenses]`` with a clear message."""
        if type(quantity) is not int or not self.min_licenses <= quantity <= self.max_licenses:
            raise InvalidLicenseCount(
                f"{self.name} takes between {self.min_licenses} and {self.max_licenses} licenses; "
                f"{quantity!r} is not possible.",
                plan=self.code,
                quantity=repr(quantity),
                min=self.min_licenses,
                max=self.max_licenses,
            )


@dataclass(frozen=True, slots=True)
class Price:
    """``unit_amount`` per license per period of ``cycle_code`` for ``plan_code``."""

    plan_code: str
    cycle_code: str
    unit_amount: Money


@dataclass(frozen=True, slots=True)
class Catalog:
    """An immutable snapshot of the catalog with keyed look-ups; unknown keys raise NotInCatalog."""

    products: dict[str, Product] = field(default_factory=dict)
    plans: dict[str, Plan] = field(default_factory=dict)
    cycles: dict[str, BillingCycle] = field(default_factory=dict)
    prices: dict[tuple[str, str, str], Price] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        products: Iterable[Product],
        plans: Iterable[Plan],
        cycles: Iterable[BillingCycle],
        prices: Iterable[Price],
    ) -> Catalog:
        return cls(
            products={p.code: p for p in products},
            plans={p.code: p for p in plans},
            cycles={c.code: c for c in cycles},
            prices={(p.plan_code, p.cycle_code, p.unit_amount.currency): p for p in prices},
        )

    def plan(self, code: str) -> Plan:
        try:
            return self.plans[code]
        except KeyError:
            raise NotInCatalog(f"There is no plan {code!r}; choose one of the listed plans.",
                               plan=code) from None

    def cycle(self, code: str) -> BillingCycle:
        try:
            return self.cycles[code]
        except KeyError:
            raise NotInCatalog(
                f"There is no billing period {code!r}; choose one of "
                f"{', '.join(sorted(self.cycles))}.",
                cycle=code,
            ) from None

    def price(self, plan_code: str, cycle_code: str, currency: str) -> Price:
        """The price of ``plan_code`` per license per ``cycle_code`` period in ``currency``."""
        try:
            return self.prices[(plan_code, cycle_code, currency)]
        except KeyError:
            raise NotInCatalog(
                f"The plan {plan_code!r} is not sold {cycle_code} in {currency}; "
                "pick another billing period or plan.",
                plan=plan_code,
                cycle=cycle_code,
                currency=currency,
            ) from None

    def plans_of(self, product_code: str) -> list[Plan]:
        """The product's plans in rank order."""
        return sorted(
            (p for p in self.plans.values() if p.product_code == product_code), key=lambda p: p.rank
        )
