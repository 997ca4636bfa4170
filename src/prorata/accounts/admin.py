"""The staff console's pages for people, accounts and the audit log.

The audit log is read-only for everyone (no add, change or delete, superusers included); staff browse
and filter it. Corporate advisors see the accounts they advise; support agents see every account.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from prorata.accounts.models import Account, AuditEntry, Membership, StaffRole, User
from prorata.accounts.permissions import staff_roles


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("email",)
    list_display = ("email", "first_name", "last_name", "is_staff", "is_active", "language")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "first_name", "last_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "language")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("name", "country", "currency", "billing_mode", "advisor", "language")
    list_filter = ("billing_mode", "country", "currency")
    search_fields = ("name", "vat_number", "memberships__user__email")
    readonly_fields = ("created_at", "currency")
    inlines = (MembershipInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Account]:
        queryset = super().get_queryset(request).select_related("advisor")
        user = request.user
        if user.is_superuser:
            return queryset
        roles = staff_roles(user)  # type: ignore[arg-type]
        if StaffRole.SUPPORT_AGENT in roles or StaffRole.OPERATOR in roles:
            return queryset
        if StaffRole.CORPORATE_ADVISOR in roles:
            return queryset.filter(advisor=user)
        return queryset.none()


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("at", "actor_email", "account", "action", "object_type", "object_id", "ip")
    list_filter = ("action", "object_type")
    search_fields = ("actor_email", "action", "object_id", "account__name")
    date_hierarchy = "at"
    list_select_related = ("account",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
