"""Support requests in the staff console: list them, read them, answer and close them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from prorata.console.scope import account_scope
from prorata.support.models import SupportRequest, SupportRequestStatus
from prorata.support.services import support_request_answer


@admin.register(SupportRequest)
class SupportRequestAdmin(admin.ModelAdmin):
    list_display = ("id", "account", "user", "kind", "status", "created_at")
    list_filter = ("status", "kind")
    search_fields = ("account__name", "user__email", "message")
    list_select_related = ("account", "user")
    fields = ("account", "user", "kind", "message", "created_at", "status", "answer",
              "answered_by", "closed_at")
    readonly_fields = ("account", "user", "kind", "message", "created_at", "answered_by",
                       "closed_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[SupportRequest]:
        # An advisor sees the requests of the accounts they advise, not every customer's.
        return super().get_queryset(request).filter(
            account_scope(request.user, "account__"))  # type: ignore[arg-type]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: SupportRequest, form: Any, change: bool
                   ) -> None:
        support_request_answer(support_request=obj, actor=request.user,  # type: ignore[arg-type]
                               answer=obj.answer,
                               close=obj.status == SupportRequestStatus.CLOSED)
