from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from prorata.common.models import ClockState


@admin.register(ClockState)
class ClockStateAdmin(admin.ModelAdmin):
    """Read-only: the clock is moved with ``prorata clock`` so that its rules apply."""

    list_display = ["instant"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
