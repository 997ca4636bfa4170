"""The console's Operator API keys page (issue 17): operators (and superusers) create keys for
their own backend, see when each was last used and from where, and revoke them.

A new key is shown once, in the answer to the form that created it (never stored, never in a
redirect, a message or the session); the page is kept out of every cache. Keys are never changed
or deleted: revoking is the only change, audited like the creation (``operator_key.create`` /
``operator_key.revoke``, with the staff member and the IP).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.shortcuts import render
from django.urls import path, reverse

from prorata.accounts.throttle import client_ip
from prorata.api.models import OperatorKey, OperatorKeyScope
from prorata.api.services import operator_key_create, operator_key_revoke
from prorata.common.clock import MOVABLE, clock_mode
from prorata_core.errors import ProrataError


class OperatorKeyForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100,
                           help_text="Which system uses it, e.g. “CRM backend”.")
    scope = forms.ChoiceField(label="Scope", choices=OperatorKeyScope.choices,
                              initial=OperatorKeyScope.READ_ONLY, widget=forms.RadioSelect)


@admin.register(OperatorKey)
class OperatorKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "display", "scope", "test_mode", "created_at", "created_by",
                    "last_used_at", "last_used_ip", "status")
    list_filter = ("scope", "test_mode")
    search_fields = ("name", "prefix")
    ordering = ("-created_at", "-id")
    fields = ("name", "display", "scope", "test_mode", "principal_email", "created_at",
              "created_by", "last_used_at", "last_used_ip", "revoked_at", "revoked_by")
    readonly_fields = fields
    change_form_template = "admin/api/operatorkey/change_form.html"

    @admin.display(description="Key")
    def display(self, obj: OperatorKey) -> str:
        return obj.display

    @admin.display(description="Status")
    def status(self, obj: OperatorKey) -> str:
        return "revoked" if obj.revoked_at else "active"

    @admin.display(description="Audit log names it as")
    def principal_email(self, obj: OperatorKey) -> str:
        return obj.principal.email

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a key is revoked, never deleted: its audit trail stays readable

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.method == "POST":  # nothing of a key changes but by revoking it
            raise PermissionDenied
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self) -> list[Any]:
        return [
            path("<int:key_id>/revoke/", self.admin_site.admin_view(self.revoke_view),
                 name="api_operatorkey_revoke"),
            *super().get_urls(),
        ]

    def add_view(self, request: HttpRequest, form_url: str = "",
                 extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = OperatorKeyForm(request.POST if request.method == "POST" else None)
        created = None
        if request.method == "POST" and form.is_valid():
            try:
                row, key = operator_key_create(
                    name=form.cleaned_data["name"], scope=form.cleaned_data["scope"],
                    actor=request.user, ip=client_ip(request))  # type: ignore[arg-type]
            except ProrataError as refused:
                form.add_error(None, refused.message)
            else:
                created = {"row": row, "key": key}
        response = render(request, "admin/api/operatorkey/add.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
            "created": created, "test_mode": clock_mode() == MOVABLE,
            "title": "Create an operator API key",
        }, status=400 if request.method == "POST" and created is None else 200)
        # The page may hold the only copy of a secret: keep it out of every cache.
        response["Cache-Control"] = "no-store"
        return response

    @staticmethod
    def _revoke(request: HttpRequest, key_id: int) -> OperatorKey:
        row = OperatorKey.objects.filter(pk=key_id).first()
        if row is None:
            raise Http404("No such key")
        operator_key_revoke(key=row, actor=request.user,  # type: ignore[arg-type]
                            ip=client_ip(request))
        return row

    def revoke_view(self, request: HttpRequest, key_id: int) -> HttpResponse:
        """POST only: revoke the key now, then back to the list."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        row = self._revoke(request, key_id)
        messages.success(request, f"The key “{row.name}” ({row.display}) is revoked: its next "
                                  "request is refused.")
        return HttpResponseRedirect(reverse("admin:api_operatorkey_changelist"))
