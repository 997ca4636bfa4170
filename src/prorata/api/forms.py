"""The form of the tokens page."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils.translation import gettext_lazy as _

from prorata.api.services import NAME_MAX_LENGTH

VALIDITY_CHOICES = [
    ("30", _("30 days")),
    ("90", _("90 days")),
    ("365", _("1 year")),
    ("never", _("No expiry")),
]


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        label=_("Name"), max_length=NAME_MAX_LENGTH,
        help_text=_("What the token is for, e.g. “Accounting export”."),
    )
    validity = forms.ChoiceField(label=_("Expires after"), choices=VALIDITY_CHOICES, initial="90")

    def valid_for(self) -> timedelta | None:
        choice = self.cleaned_data["validity"]
        return None if choice == "never" else timedelta(days=int(choice))
