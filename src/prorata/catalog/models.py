"""What is sold: products, their plans, billing cycles and prices per license per cycle (DESIGN §2).

The engine never sees these rows: :func:`prorata.catalog.selectors.catalog_snapshot` turns them into
the frozen values of :mod:`prorata_core.catalog`. Amounts are integer minor units (cents).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Length

from prorata_core.errors import UnknownCurrency
from prorata_core.money import Money, currency_exponent


def validate_currency(value: str) -> None:
    """An ISO 4217 code the engine knows (USD, EUR ...)."""
    try:
        currency_exponent(value)
    except UnknownCurrency as error:
        raise ValidationError(error.message, code=error.code) from None


def validate_features(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ValidationError(
            'Features are a list of feature codes, such as ["recording", "api_access"].',
            code="invalid_features",
        )


class Product(models.Model):
    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Plan(models.Model):
    """A plan of a product; a higher ``rank`` is an upgrade. See :class:`prorata_core.catalog.Plan`."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="plans")
    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    rank = models.PositiveSmallIntegerField(help_text="A higher rank is an upgrade.")
    participant_limit = models.PositiveIntegerField()
    features = models.JSONField(default=list, blank=True, validators=[validate_features])
    trial_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Set only for a free trial: its length in days."
    )
    self_service = models.BooleanField(
        default=True, help_text="Off for advisor-priced plans, sold by staff only."
    )
    min_licenses = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    max_licenses = models.PositiveIntegerField(default=10_000, validators=[MinValueValidator(1)])
    active = models.BooleanField(default=True, help_text="Inactive plans are no longer offered.")

    class Meta:
        ordering = ["product__code", "rank", "code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(min_licenses__gte=1, max_licenses__gte=models.F("min_licenses")),
                name="catalog_plan_license_range",
                violation_error_message="Licenses: the minimum is at least 1 and at most the maximum.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class BillingCycle(models.Model):
    code = models.SlugField(max_length=40, unique=True)
    months = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["months", "code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(months__gte=1), name="catalog_billingcycle_months_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class Price(models.Model):
    """``unit_amount`` minor units of ``currency`` per license per ``cycle`` period of ``plan``."""

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="prices")
    cycle = models.ForeignKey(BillingCycle, on_delete=models.PROTECT, related_name="prices")
    currency = models.CharField(max_length=3, validators=[validate_currency])
    unit_amount = models.BigIntegerField(
        validators=[MinValueValidator(0)], help_text="In minor units (cents)."
    )

    class Meta:
        ordering = ["plan__rank", "cycle__months", "currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "cycle", "currency"], name="catalog_price_one_per_plan_cycle_currency"
            ),
            models.CheckConstraint(
                condition=models.Q(unit_amount__gte=0), name="catalog_price_unit_amount_not_negative"
            ),
            models.CheckConstraint(
                condition=models.lookups.Exact(Length("currency"), 3),
                name="catalog_price_currency_three_letters",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan} {self.cycle}: {self.money}"

    @property
    def money(self) -> Money:
        return Money(self.unit_amount, self.currency)
