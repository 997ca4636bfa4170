"""The staff console's read-only view of orders, with the ones whose payment is not settled first.

An order stays ``placed`` while its card payment is pending or its outcome unknown; the
reconciliation job (:func:`prorata.subscriptions.services.payments_reconcile_due`) settles it within
minutes. Staff see every such order under "Settlement: not settled", oldest first, with its
payment's state and idempotency key (what to give the provider's support), and can settle one at
once with the "Reconcile with the gateway now" action (the same service, audited by the order's
own entries). Orders are written by the checkout only.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from prorata.billing.models import PaymentStatus
from prorata.common.console import ReadOnlyAdmin
from prorata.subscriptions.models import Order, OrderStatus


class SettlementFilter(admin.SimpleListFilter):
    title = _("settlement")
    parameter_name = "settlement"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("unsettled", _("not settled")), ("settled", _("settled"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        if self.value() == "unsettled":
            return queryset.filter(status=OrderStatus.PLACED)
        if self.value() == "settled":
            return queryset.exclude(status=OrderStatus.PLACED)
        return queryset


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ("id", "account", "kind", "status", "payment_state", "amount_due", "currency",
                    "created_at", "completed_at", "failure_code")
    list_filter = (SettlementFilter, "status", "kind", "by_staff")
    search_fields = ("account__name", "idempotency_key", "payments__idempotency_key")
    list_select_related = ("account",)
    actions = ["reconcile_now"]

    @admin.display(description=_("payment"))
    def payment_state(self, order: Order) -> str:
        payments = list(order.payments.all())
        if not payments:
            return "—"
        payment = payments[-1]
        return f"{payment.get_status_display()} ({payment.idempotency_key})"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Order]:
        return super().get_queryset(request).prefetch_related("payments")

    def get_ordering(self, request: HttpRequest) -> list[str]:
        if request.GET.get(SettlementFilter.parameter_name) == "unsettled":
            return ["created_at", "id"]  # the longest waiting first
        return ["-created_at", "-id"]

    @admin.action(description=_("Reconcile with the gateway now"), permissions=["reconcile"])
    def reconcile_now(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        from prorata.billing.models import Payment
        from prorata.subscriptions.services import payment_reconcile

        ids = list(Payment.objects.filter(
            order__in=queryset.filter(status=OrderStatus.PLACED),
            status__in=[PaymentStatus.PENDING, PaymentStatus.UNKNOWN],
        ).values_list("id", flat=True))
        results = payment_reconcile(payment_ids=ids)
        settled = sum(result.status != OrderStatus.PLACED for result in results)
        self.message_user(request, _("%(settled)d of %(count)d orders settled.")
                          % {"settled": settled, "count": len(ids)}, messages.INFO)

    def has_reconcile_permission(self, request: HttpRequest) -> bool:
        """Support agents (and superusers) settle orders; other staff only look."""
        from prorata.accounts.models import StaffRole
        from prorata.accounts.permissions import staff_roles

        user = request.user
        return bool(user.is_active and user.is_staff) and (
            user.is_superuser or StaffRole.SUPPORT_AGENT in staff_roles(user))

    def get_readonly_fields(self, request: HttpRequest, obj: Order | None = None) -> list[str]:
        return [field.name for field in Order._meta.fields]
