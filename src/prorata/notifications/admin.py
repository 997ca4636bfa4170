"""The staff console's view of the outbox: what was sent, what waits, what failed and why.

Rows are written by the outbox services only; staff may put a failed or waiting e-mail back in line
("Send again now"), which the next ``prorata deliver-mail`` run picks up.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from prorata.notifications.models import OutboxMessage
from prorata.notifications.outbox import outbox_retry_now


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ("created_at", "to", "template", "language", "status", "attempts",
                    "next_attempt_at", "sent_at")
    list_filter = ("status", "template", "language")
    search_fields = ("to", "dedupe_key")
    date_hierarchy = "created_at"
    actions = ("send_again_now",)
    readonly_fields = [field.name for field in OutboxMessage._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description=_("Send again now"), permissions=["change"])
    def send_again_now(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        count = outbox_retry_now(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request,
            ngettext("%(count)d e-mail will be sent by the next delivery run.",
                     "%(count)d e-mails will be sent by the next delivery run.", count)
            % {"count": count},
            messages.SUCCESS,
        )
