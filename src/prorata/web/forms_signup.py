"""The sign-up form: it parses and checks input; :mod:`prorata.accounts.signup` writes."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from prorata.accounts.countries import country_choices
from prorata.accounts.models import User


def _countries() -> list[tuple[str, str]]:
    return [("", _("Choose your country")),
            *country_choices((get_language() or "en").split("-")[0])]


class SignUpForm(forms.Form):
    company = forms.CharField(
        label=_("Company name"), max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "organization"}),
        error_messages={"required": _("Enter your company's name.")},
    )
    country = forms.ChoiceField(
        label=_("Country"), choices=_countries,
        help_text=_("Sets your currency: euros (EUR) in the European Union, US dollars (USD) "
                    "elsewhere, and the VAT on your invoices."),
        error_messages={"required": _("Choose your country from the list."),
                        "invalid_choice": _("Choose your country from the list.")},
    )
    email = forms.EmailField(
        label=_("Your e-mail address"), max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        help_text=_("You sign in with it; we send a link to confirm it."),
        error_messages={"required": _("Enter your e-mail address."),
                        "invalid": _("Enter a valid e-mail address.")},
    )
    password1 = forms.CharField(
        label=_("Password"), strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("At least 8 characters; not only digits, not a common password, not like "
                    "your name or e-mail address."),
        error_messages={"required": _("Choose a password.")},
    )
    password2 = forms.CharField(
        label=_("Password (again)"), strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        error_messages={"required": _("Type the same password again.")},
    )

    def clean_email(self) -> str:
        return str(self.cleaned_data["email"]).strip().lower()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first, second = data.get("password1"), data.get("password2")
        if first and second and first != second:
            self.add_error("password2", _("The two passwords differ. Type the same one twice."))
        elif first:
            probe = User(email=data.get("email") or "")
            try:
                password_validation.validate_password(first, probe)
            except ValidationError as error:
                self.add_error("password1", error)
        return data
