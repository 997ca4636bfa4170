"""The catalog in the staff console (/console/). Amounts are shown and entered as decimals.

Every add, change and delete (prices edited inline too) is audited as ``catalog.<model>.<verb>``
(:class:`prorata.console.audited.AuditedAdmin`)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from prorata.catalog.models import BillingCycle, Plan, Price, Product
from prorata.console.audited import AuditedAdmin
from prorata_core.errors import ProrataError
from prorata_core.money import Money


class PriceForm(forms.ModelForm):
    """Takes the amount as a decimal string ("129.00") and stores exact minor units; never a float."""

    amount = forms.CharField(
        max_length=24, help_text="Per license per billing period, e.g. 129.00 (no float rounding)."
    )

    class Meta:
        model = Price
        fields = ["plan", "cycle", "currency", "amount"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["amount"] = self.instance.money.as_decimal_string()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        currency, amount = cleaned.get("currency"), cleaned.get("amount")
        if currency and amount is not None:
            try:
                money = Money.of(amount, currency)
            except ProrataError as error:
                self.add_error("amount", error.message)
            else:
                if money.amount < 0:
                    self.add_error("amount", "A price cannot be negative.")
                else:
                    # Not a form field: set here, before the model instance is validated and saved.
                    self.instance.unit_amount = money.amount
        return cleaned


class PriceInline(admin.TabularInline):
    model = Price
    form = PriceForm
    extra = 0
    fields = ["cycle", "currency", "amount"]


@admin.register(Product)
class ProductAdmin(AuditedAdmin):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]


@admin.register(Plan)
class PlanAdmin(AuditedAdmin):
    list_display = [
        "name", "code", "product", "rank", "participant_limit", "feature_list", "trial_days",
        "self_service", "licenses", "active",
    ]  # fmt: skip
    list_filter = ["product", "active", "self_service"]
    list_select_related = ["product"]
    search_fields = ["code", "name"]
    inlines = [PriceInline]

    @admin.display(description="features")
    def feature_list(self, plan: Plan) -> str:
        return ", ".join(plan.features) or "—"

    @admin.display(description="licenses")
    def licenses(self, plan: Plan) -> str:
        return f"{plan.min_licenses}–{plan.max_licenses}"


@admin.register(BillingCycle)
class BillingCycleAdmin(AuditedAdmin):
    list_display = ["code", "months"]


@admin.register(Price)
class PriceAdmin(AuditedAdmin):
    form = PriceForm
    list_display = ["plan", "cycle", "currency", "amount"]
    list_filter = ["currency", "cycle", "plan__product", "plan"]
    list_select_related = ["plan", "cycle"]

    @admin.display(description="amount per license", ordering="unit_amount")
    def amount(self, price: Price) -> str:
        return price.money.as_decimal_string()
