"""The console's admin site: Django's, with a second factor (TOTP, django-otp) for every staff
member, and the customer sign-in's throttling.

- Sign in: e-mail, password and the 6-digit code of the authenticator app (or one of the recovery
  codes). A wrong code is a failed sign-in like a wrong password (counted, locked out the same way).
- A staff member without a confirmed authenticator signs in with the password only, and can then
  do nothing but enrol one (``/console/2fa/setup/``): scan the key, type a code, get ten
  single-use recovery codes, shown once.
- Every console page needs a session verified by the second factor (``is_verified``).

TOTP codes are wall-clock time by nature (the phone's app knows no project clock): this is the one
place that reads real time, inside django-otp.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse

from prorata.console.signin import ConsoleSignInForm

RECOVERY_CODES = 10


def _verified(request: HttpRequest) -> bool:
    check = getattr(request.user, "is_verified", None)
    return bool(check and check())


def has_confirmed_device(user: Any) -> bool:
    from django_otp import user_has_device

    return bool(user.is_authenticated and user_has_device(user, confirmed=True))


class ConsoleSite(admin.AdminSite):
    site_header = "Prorata console"
    site_title = "Prorata console"
    index_title = "Staff console"
    login_form = ConsoleSignInForm
    login_template = "admin/console/login.html"

    index_template = "admin/console/index.html"

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None
              ) -> Any:
        """The console home, with the overdue net-30 invoices of the accounts the reader sees
        (an advisor: theirs), linked to their filtered list, for roles that see documents."""
        from prorata.accounts.models import StaffRole
        from prorata.accounts.permissions import staff_roles
        from prorata.billing.admin import overdue_invoices
        from prorata.billing.models import Document
        from prorata.common.clock import now
        from prorata.console.scope import account_scope

        user: Any = request.user
        context = dict(extra_context or {})
        if user.is_superuser or staff_roles(user) & {StaffRole.SUPPORT_AGENT,
                                                     StaffRole.CORPORATE_ADVISOR}:
            context["overdue_count"] = overdue_invoices(
                Document.objects.filter(account_scope(user, "account__")), now()).count()
            context["overdue_url"] = (reverse("admin:billing_document_changelist")
                                      + "?overdue=yes")
        return super().index(request, context)

    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and _verified(request)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None
              ) -> HttpResponse:
        user = request.user
        if (request.method == "GET" and user.is_authenticated and user.is_active
                and user.is_staff and not _verified(request)):
            if not has_confirmed_device(user):
                return HttpResponseRedirect(reverse("admin:console_otp_setup"))
            logout(request)  # a half-signed-in session starts again with the code
        return super().login(request, extra_context)

    def get_urls(self) -> list[Any]:
        from prorata.console.otp import otp_setup

        return [
            path("2fa/setup/", self.admin_view_unverified(otp_setup), name="console_otp_setup"),
            *super().get_urls(),
        ]

    def admin_view_unverified(self, view: Any) -> Any:
        """For the enrolment page: signed-in staff whose session has no second factor yet."""
        from django.views.decorators.csrf import csrf_protect

        def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not (user.is_authenticated and user.is_active and user.is_staff):
                from django.contrib.auth.views import redirect_to_login

                return redirect_to_login(request.get_full_path(), reverse("admin:login"))
            return view(request, self, *args, **kwargs)

        return csrf_protect(inner)


def render_console(request: HttpRequest, site: ConsoleSite, template: str,
                   context: dict[str, Any]) -> HttpResponse:
    return render(request, template, {**site.each_context(request), **context})
