"""Sign-in, sign-out, password reset, the profile page (S1) and the language switch.

Thin edges: each view parses a form, calls one service of :mod:`prorata.accounts.credentials`, and
renders or redirects. Django's auth views do the sign-in, sign-out and password reset plumbing.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import INTERNAL_RESET_SESSION_TOKEN
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views import i18n
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from prorata.accounts.credentials import (
    email_change_check,
    email_change_confirm,
    email_change_pending,
    email_change_request,
    password_change,
    password_reset_complete,
    signin_succeeded,
    user_language_set,
)
from prorata.accounts.errors import (
    EmailInvalid,
    EmailLinkExpired,
    EmailLinkInvalid,
    EmailLinkUsed,
    EmailNotSent,
    EmailTaken,
    EmailUnchanged,
)
from prorata.accounts.forms import (
    EmailChangeForm,
    LanguageForm,
    PasswordChangeForm,
    PasswordResetForm,
    SetPasswordForm,
    SignInForm,
    reset_block_message,
)
from prorata.accounts.resets import password_reset_request
from prorata.accounts.throttle import client_ip
from prorata.accounts.tokens import password_reset_tokens
from prorata.common.urls import absolute_url


class SignInView(auth_views.LoginView):
    """``/accounts/login/``: Email and Password; lands on ``next`` or ``LOGIN_REDIRECT_URL``."""

    authentication_form = SignInForm
    template_name = "accounts/sign_in.html"
    redirect_authenticated_user = True

    def form_valid(self, form: SignInForm) -> HttpResponse:  # type: ignore[override]
        response = super().form_valid(form)
        signin_succeeded(user=form.get_user())
        return response


class SignOutView(auth_views.LogoutView):
    """POST only (with the CSRF token), from the top bar of every page."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        messages.info(request, gettext("You are signed out."))
        return response


class PasswordResetView(auth_views.PasswordResetView):
    form_class = PasswordResetForm
    template_name = "accounts/password_reset.html"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    email_template_name = "accounts/email/password_reset_body.txt"
    html_email_template_name = "accounts/email/password_reset_body.html"
    token_generator = password_reset_tokens
    success_url = reverse_lazy("accounts:password_reset_done")
    title = _("Reset your password")

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:  # type: ignore[override]
        # Only a row written here, the same work for any address; the worker looks the address
        # up and queues the e-mail (prorata.accounts.resets).
        block = password_reset_request(email=form.cleaned_data["email"],
                                       ip=client_ip(self.request),
                                       language=translation.get_language() or settings.LANGUAGE_CODE)
        if block is not None:
            form.add_error(None, reset_block_message(block))
            response = self.form_invalid(form)
            response.status_code = 429
            return response
        return HttpResponseRedirect(self.get_success_url())


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"
    title = _("Check your e-mail")


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    form_class = SetPasswordForm
    template_name = "accounts/password_reset_confirm.html"
    token_generator = password_reset_tokens
    success_url = reverse_lazy("accounts:password_reset_complete")
    title = _("Choose a new password")

    def form_valid(self, form: SetPasswordForm) -> HttpResponse:  # type: ignore[override]
        # dispatch() shows the form only for a valid link, so self.user is the link's user
        password_reset_complete(
            user=self.user, new_password=form.cleaned_data["new_password1"],
            ip=client_ip(self.request),
        )
        del self.request.session[INTERNAL_RESET_SESSION_TOKEN]
        return HttpResponseRedirect(self.get_success_url())


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"
    title = _("Password changed")


def _profile_page(request: HttpRequest, **forms: Any) -> HttpResponse:
    user = request.user
    context = {
        "password_form": forms.get("password_form") or PasswordChangeForm(user),
        "email_form": forms.get("email_form") or EmailChangeForm(user),
        "language_form": forms.get("language_form")
        or LanguageForm(initial={"language": user.language}),  # type: ignore[union-attr]
        "pending_email_change": email_change_pending(user),  # type: ignore[arg-type]
    }
    return render(request, "accounts/profile.html", context)


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    """``/profile/``: the user's sign-in e-mail, password and language."""
    return _profile_page(request)


@login_required
@require_POST
def profile_password(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST)
    if not form.is_valid():
        return _profile_page(request, password_form=form)
    password_change(
        user=request.user,  # type: ignore[arg-type]
        new_password=form.cleaned_data["new_password1"],
        ip=client_ip(request),
    )
    update_session_auth_hash(request, request.user)  # this session stays; the others end
    messages.success(request, gettext("Your password is changed. Your other sessions are signed out."))
    return redirect("accounts:profile")


@login_required
@require_POST
def profile_email(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = EmailChangeForm(user, request.POST)
    if form.is_valid():
        try:
            change = email_change_request(
                user=user,  # type: ignore[arg-type]
                new_email=form.cleaned_data["new_email"],
                link_for=lambda token: absolute_url(reverse("accounts:email_confirm", args=[token])),
                ip=client_ip(request),
            )
        except (EmailInvalid, EmailUnchanged, EmailTaken) as error:
            form.add_error("new_email", gettext(error.message))
        except EmailNotSent as error:
            form.add_error(None, gettext(error.message))
        else:
            messages.success(request, gettext(
                "We sent a confirmation link to %(new)s. Your address changes when you open it; "
                "until then, sign in with %(current)s."
            ) % {"new": change.new_email, "current": change.old_email})
            return redirect("accounts:profile")
    return _profile_page(request, email_form=form)


@login_required
@require_POST
def profile_language(request: HttpRequest) -> HttpResponse:
    form = LanguageForm(request.POST)
    if not form.is_valid():
        return _profile_page(request, language_form=form)
    language = form.cleaned_data["language"]
    user_language_set(user=request.user, language=language)  # type: ignore[arg-type]
    if language:
        translation.activate(language)  # so that the confirmation is in the chosen language
    messages.success(request, gettext("Your language is saved."))
    response = redirect("accounts:profile")
    _remember_language(response, language)
    return response


def _remember_language(response: HttpResponse, language: str) -> None:
    # The language cookie keeps the choice after signing out; "browser default" removes it.
    if language:
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME, language, max_age=settings.LANGUAGE_COOKIE_AGE,
            path=settings.LANGUAGE_COOKIE_PATH, domain=settings.LANGUAGE_COOKIE_DOMAIN,
            secure=settings.LANGUAGE_COOKIE_SECURE, httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE,
        )
    else:
        response.delete_cookie(
            settings.LANGUAGE_COOKIE_NAME, path=settings.LANGUAGE_COOKIE_PATH,
            domain=settings.LANGUAGE_COOKIE_DOMAIN, samesite=settings.LANGUAGE_COOKIE_SAMESITE,
        )


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """The top bar's switch: Django's ``set_language`` (a cookie, then back to ``next``); a
    signed-in user's profile keeps the choice too."""
    response = i18n.set_language(request)
    language = request.POST.get("language", "")
    if request.user.is_authenticated and language in dict(settings.LANGUAGES):
        user_language_set(user=request.user, language=language)  # type: ignore[arg-type]
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def email_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The link sent to the new address. GET shows what will change and a button; POST changes it.

    (A GET never changes anything: mail scanners and link previews open links by themselves.)
    """
    try:
        if request.method == "POST":
            user = email_change_confirm(token=token, ip=client_ip(request))
        else:
            change = email_change_check(token=token)
    except (EmailLinkInvalid, EmailLinkUsed, EmailLinkExpired, EmailTaken) as error:
        return render(
            request, "accounts/email_confirm.html", {"error": gettext(error.message)},
            status=error.http_status,
        )
    if request.method == "POST":
        messages.success(request, gettext("Your e-mail address is now %(email)s.") % {"email": user.email})
        if request.user.is_authenticated and request.user.pk == user.pk:
            update_session_auth_hash(request, user)  # this session stays; the others end
            return redirect("accounts:profile")
        return redirect(settings.LOGIN_URL)
    return render(request, "accounts/email_confirm.html", {"change": change, "token": token})
