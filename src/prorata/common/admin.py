from __future__ import annotations

from django.contrib import admin

from prorata.common.console import ReadOnlyAdmin
from prorata.common.models import ClockState


@admin.register(ClockState)
class ClockStateAdmin(ReadOnlyAdmin):
    """Read-only: the clock is moved with ``prorata clock`` so that its rules apply."""

    list_display = ["instant"]
