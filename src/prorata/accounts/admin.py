"""The staff console's pages for people, accounts and the audit log.

The audit log is read-only for everyone (no add, change or delete, superusers included); staff browse
and filter it. What each role sees is :mod:`prorata.console.scope`'s: corporate advisors the accounts
they advise, their members and their audit rows; support agents every customer account; operators
no account, only the catalog's and settings' audit rows.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from prorata.accounts.models import Account, AuditEntry, Membership, User
from prorata.accounts.services import audit_record
from prorata.accounts.throttle import client_ip
from prorata.common.console import ReadOnlyAdmin
from prorata.console.scope import account_scope, audit_scope, user_scope

#: Account fields whose change is money- or permission-relevant, audited when staff edit them.
AUDITED_ACCOUNT_FIELDS = (
    "name", "country", "billing_address", "vat_number", "billing_mode", "advisor_id",
    "payment_terms_days", "language",
)


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

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).filter(user_scope(request.user))  # type: ignore[arg-type]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Staff roles are group memberships: a permission-relevant change, so it is audited.
        user = form.instance
        before = sorted(user.groups.values_list("name", flat=True)) if change else []
        flags_before = form.initial.get("is_staff"), form.initial.get("is_superuser")
        super().save_related(request, form, formsets, change)
        after = sorted(user.groups.values_list("name", flat=True))
        flags_after = user.is_staff, user.is_superuser
        if before != after or (change and flags_before != flags_after):
            audit_record(
                actor=request.user,  # type: ignore[arg-type]
                action="user.staff_roles", obj=user, ip=client_ip(request),
                before={"groups": before, "is_staff": flags_before[0],
                        "is_superuser": flags_before[1]},
                after={"groups": after, "is_staff": flags_after[0],
                       "is_superuser": flags_after[1]},
            )


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("name", "country", "currency", "billing_mode", "advisor", "language",
                    "overview_link")
    list_filter = ("billing_mode", "country", "currency")
    search_fields = ("name", "vat_number", "memberships__user__email")
    readonly_fields = ("created_at", "currency")
    inlines = (MembershipInline,)

    @admin.display(description=_("overview"))
    def overview_link(self, obj: Account) -> str:
        url = reverse("admin:accounts_account_overview", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, "Overview")

    def get_urls(self) -> list[Any]:
        from prorata.console.views import account_overview, staff_order

        def overview(request: HttpRequest, account_id: int) -> HttpResponse:
            if not self.has_view_permission(request):
                raise PermissionDenied
            return account_overview(request, account_id, self.admin_site)

        def order(request: HttpRequest, account_id: int, product_code: str) -> HttpResponse:
            if not self.has_view_permission(request):
                raise PermissionDenied
            return staff_order(request, account_id, product_code, self.admin_site)

        return [
            path("<int:account_id>/overview/", self.admin_site.admin_view(overview),
                 name="accounts_account_overview"),
            path("<int:account_id>/order/<slug:product_code>/", self.admin_site.admin_view(order),
                 name="accounts_account_order"),
            *super().get_urls(),
        ]

    def save_model(self, request: HttpRequest, obj: Account, form: Any, change: bool) -> None:
        before = (
            {f: form.initial.get(f.removesuffix("_id"), None) for f in AUDITED_ACCOUNT_FIELDS}
            if change else None
        )
        super().save_model(request, obj, form, change)
        after = {f: getattr(obj, f) for f in AUDITED_ACCOUNT_FIELDS}
        if before is not None:
            before = {f: before[f] for f in AUDITED_ACCOUNT_FIELDS}
            if before == after:
                return
        audit_record(
            actor=request.user,  # type: ignore[arg-type]
            action="account.change" if change else "account.create", account=obj, obj=obj,
            before=before, after=after, ip=client_ip(request),
        )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # Role changes made in the console are audited like those made through the services.
        # The forms have already copied their data onto the instances: read the old roles anew.
        changed = [f.instance.pk for f in formset.initial_forms if f.instance.pk and f.has_changed()]
        before = {m.pk: m.roles for m in Membership.objects.filter(pk__in=changed)}
        instances = formset.save()
        for member in instances:
            audit_record(
                actor=request.user,  # type: ignore[arg-type]
                action="membership.roles", account=form.instance, obj=member,
                before={"roles": before[member.pk]} if member.pk in before else None,
                after={"user": member.user.email, "roles": member.roles}, ip=client_ip(request),
            )
        for member in formset.deleted_objects:
            audit_record(
                actor=request.user,  # type: ignore[arg-type]
                action="membership.remove", account=form.instance,
                before={"user": member.user.email, "roles": member.roles},
                ip=client_ip(request),
            )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Account]:
        return super().get_queryset(request).select_related("advisor").filter(
            account_scope(request.user))  # type: ignore[arg-type]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor_email", "account", "action", "object_type", "object_id", "ip")
    list_filter = ("action", "object_type")
    search_fields = ("actor_email", "action", "object_id", "account__name")
    date_hierarchy = "at"
    list_select_related = ("account",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEntry]:
        return super().get_queryset(request).filter(audit_scope(request.user))  # type: ignore[arg-type]
