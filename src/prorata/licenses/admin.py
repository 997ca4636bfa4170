"""The console's page of the webinar product's entitlement API keys: operators create one (the
key is shown once, in the confirmation message), see them, and revoke them."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from prorata.accounts.models import StaffRole
from prorata.accounts.permissions import staff_roles
from prorata.licenses.entitlements import entitlement_key_create, entitlement_key_revoke
from prorata.licenses.models import EntitlementKey


def _operator(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and (user.is_superuser  # type: ignore[union-attr]
                                    or StaffRole.OPERATOR in staff_roles(user)))  # type: ignore[arg-type]


class EntitlementKeyForm(forms.ModelForm):
    class Meta:
        model = EntitlementKey
        fields = ["name"]


@admin.register(EntitlementKey)
class EntitlementKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "display", "created_at", "created_by", "revoked_at")
    list_filter = ("revoked_at",)
    readonly_fields = ("display", "created_at", "created_by", "revoked_at")
    actions = ["revoke"]
    form = EntitlementKeyForm

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _operator(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _operator(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _operator(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _operator(request) and obj is None  # the list's actions; a key is never edited

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["name"] if obj is None else ["name", *self.readonly_fields]

    def save_model(self, request: HttpRequest, obj: EntitlementKey, form: Any,
                   change: bool) -> None:
        row, key = entitlement_key_create(name=obj.name, actor=request.user)  # type: ignore[arg-type]
        obj.pk, obj._state.adding = row.pk, False
        messages.warning(request, gettext(
            "The key of %(name)s is %(key)s — copy it now: it is shown only once.")
            % {"name": row.name, "key": key})

    def log_addition(self, *args: Any, **kwargs: Any) -> Any:
        return None  # audited by the service

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        count = sum(entitlement_key_revoke(key=key, actor=request.user)  # type: ignore[arg-type]
                    for key in queryset)
        self.message_user(request, gettext("%(count)s key(s) revoked.") % {"count": count})
