"""The staff console's read-only view of saved cards and of the sandbox gateway's records.

Cards are added and removed by their account's billing contacts (services, audited); staff only look.
"""

from __future__ import annotations

from django.contrib import admin

from prorata.common.console import ReadOnlyAdmin
from prorata.payments.models import PaymentMethod, SandboxCard, SandboxCharge, SandboxRefund


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyAdmin):
    list_display = ("account", "brand", "last4", "expiry", "is_default", "created_at", "removed_at")
    list_filter = ("brand", "is_default")
    search_fields = ("account__name", "last4")
    list_select_related = ("account",)
    exclude = ("token",)


@admin.register(SandboxCard)
class SandboxCardAdmin(ReadOnlyAdmin):
    list_display = ("token", "brand", "last4", "exp_month", "exp_year", "behaviour", "created_at")
    list_filter = ("behaviour",)


@admin.register(SandboxCharge)
class SandboxChargeAdmin(ReadOnlyAdmin):
    list_display = ("reference", "amount", "currency", "outcome", "first_answer", "created_at")
    list_filter = ("outcome",)
    search_fields = ("reference", "idempotency_key")


@admin.register(SandboxRefund)
class SandboxRefundAdmin(ReadOnlyAdmin):
    list_display = ("reference", "charge_reference", "amount", "currency", "outcome", "created_at")
    list_filter = ("outcome",)
    search_fields = ("reference", "charge_reference", "idempotency_key")
