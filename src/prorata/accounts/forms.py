"""Forms of the sign-in and profile pages. They parse and check input; services do the writing."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import forms as auth_forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from prorata.accounts.throttle import (
    ADDRESS,
    Block,
    client_ip,
    signin_block,
    signin_failure_record,
)
from prorata.common.clock import now


def lockout_message(block: Block) -> str:
    minutes = block.minutes_left(now())
    if block.scope == ADDRESS:
        text = ngettext(
            "Too many failed sign-ins for this address. Try again in %(minutes)d minute or reset "
            "your password.",
            "Too many failed sign-ins for this address. Try again in %(minutes)d minutes or reset "
            "your password.",
            minutes,
        )
    else:
        text = ngettext(
            "Too many failed sign-ins from your network. Try again in %(minutes)d minute.",
            "Too many failed sign-ins from your network. Try again in %(minutes)d minutes.",
            minutes,
        )
    return text % {"minutes": minutes}


def reset_block_message(block: Block) -> str:
    """The password-reset page's refusal once one network asked too often (:mod:`prorata.accounts.resets`)."""
    minutes = block.minutes_left(now())
    return ngettext(
        "Too many password reset requests from your network. Try again in %(minutes)d minute.",
        "Too many password reset requests from your network. Try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}


class SignInForm(auth_forms.AuthenticationForm):
    """E-mail and password, throttled per address from one IP and per IP (:mod:`prorata.accounts.throttle`)."""

    username = auth_forms.UsernameField(
        label=_("Email"),
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    error_messages = {
        "invalid_login": _("The email or password is incorrect."),
        "inactive": _("This account is disabled. Contact your administrator."),
    }

    def clean(self) -> dict[str, Any]:
        email = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if not email or not password:
            return self.cleaned_data  # the required fields say what is missing
        ip = client_ip(self.request) if self.request is not None else None
        block = signin_block(email=email, ip=ip)
        if block is not None:
            raise ValidationError(lockout_message(block), code="throttled")
        try:
            return super().clean()
        except ValidationError as error:
            if getattr(error, "code", None) == "invalid_login":
                block = signin_failure_record(email=email, ip=ip)
                if block is not None:
                    raise ValidationError(
                        [error, ValidationError(lockout_message(block), code="throttled")]
                    ) from None
            raise


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    """Current password, then the new one twice (Django's validators apply)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["old_password"].widget.attrs.pop("autofocus", None)  # one form of several
        self.fields["old_password"].label = _("Current password")
        self.fields["new_password1"].label = _("New password")
        self.fields["new_password2"].label = _("New password (again)")
        self.fields["new_password1"].help_text = _(
            "At least 8 characters; not only digits, not a common password, not like your name "
            "or e-mail address."
        )
        self.error_messages = {
            **self.error_messages,
            "password_incorrect": _("Your current password is incorrect. Nothing was changed."),
            "password_mismatch": _("The two new passwords differ. Type the same one twice."),
        }


class SetPasswordForm(auth_forms.SetPasswordForm):
    """The new password chosen through a reset link, twice."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].label = _("New password")
        self.fields["new_password2"].label = _("New password (again)")
        self.error_messages = {
            **self.error_messages,
            "password_mismatch": _("The two new passwords differ. Type the same one twice."),
        }


class EmailChangeForm(forms.Form):
    """The new address, and the current password to show it is really the user asking."""

    new_email = forms.EmailField(
        label=_("New email"), max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        error_messages={"invalid": _("Enter a valid e-mail address.")},
    )
    password = forms.CharField(
        label=_("Current password"), strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, user: Any, *args: Any, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_password(self) -> str:
        password: str = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise ValidationError(
                _("Your current password is incorrect. Nothing was changed."),
                code="password_incorrect",
            )
        return password


def language_choices() -> list[tuple[str, str]]:
    # Each language is named in itself, so that anyone can find their own.
    names = {"en": "English", "fr": "Français"}
    return [("", _("Browser default")), *((code, names.get(code, name)) for code, name in settings.LANGUAGES)]


class LanguageForm(forms.Form):
    language = forms.ChoiceField(
        label=_("Language"), choices=language_choices, required=False,
        error_messages={"invalid_choice": _("Choose one of the languages offered.")},
    )


class PasswordResetForm(auth_forms.PasswordResetForm):
    """The address to send a reset link to; the view records the request
    (:func:`prorata.accounts.resets.password_reset_request`) instead of Django's sending it."""

    email = forms.EmailField(
        label=_("Email"), max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
        error_messages={"invalid": _("Enter a valid e-mail address.")},
    )
