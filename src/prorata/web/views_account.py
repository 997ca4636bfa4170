"""The account's own pages in the billing center: billing details (issue 16).

Thin edges: :func:`account_for` first (404 for another account, 403 without the role), one
service call, a page.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language, gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from prorata.accounts.billing_details import (
    BillingDetailsInvalid,
    account_billing_details_update,
)
from prorata.accounts.countries import country_choices, default_time_zone, time_zones
from prorata.accounts.models import User
from prorata.accounts.permissions import Action, account_for, can
from prorata.accounts.throttle import client_ip
from prorata.subscriptions.selectors import cart_count
from prorata.web.errors import error_message
from prorata_core.errors import InvalidVatNumber, ProrataError


def _countries() -> list[tuple[str, str]]:
    return list(country_choices((get_language() or "en").split("-")[0]))


def _zones() -> list[tuple[str, str]]:
    # Etc/ and the old aliases are left out of the list; a stored one is still accepted.
    names = sorted(zone for zone in time_zones() if "/" in zone and not zone.startswith(
        ("Etc/", "SystemV/", "US/", "Canada/", "Brazil/", "Mexico/", "Chile/")))
    return [("UTC", "UTC"),
            *((zone, zone.replace("_", " ")) for zone in names)]


class BillingDetailsForm(forms.Form):
    name = forms.CharField(label=_("Legal name"), max_length=200,
                           help_text=_("As it must appear on invoices."),
                           widget=forms.TextInput(attrs={"autocomplete": "organization"}))
    billing_address = forms.CharField(
        label=_("Billing address"), required=False, max_length=1000,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "street-address"}),
        help_text=_("Street, postal code and city, one per line. The country comes from the "
                    "field below."))
    country = forms.ChoiceField(label=_("Country"), choices=_countries)
    vat_number = forms.CharField(
        label=pgettext_lazy("form label", "VAT number"), required=False, max_length=40,
        help_text=_("With its country prefix, e.g. FR40303265045. A valid number from another "
                    "EU country than ours means no VAT on your invoices (reverse charge)."))
    billing_email = forms.EmailField(
        label=_("Billing e-mail"), required=False, max_length=254,
        help_text=_("Printed on your invoices and credit notes, for your accounts department."),
        error_messages={"invalid": _("Enter a valid e-mail address.")})
    time_zone = forms.ChoiceField(
        label=_("Time zone"), choices=_zones,
        help_text=_("Dates on your pages and documents are shown in it."))


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def billing_details(request: HttpRequest, account_id: int) -> HttpResponse:
    """``/billing/<id>/details/``: the details every later invoice and credit note prints."""
    user: User = request.user  # type: ignore[assignment]
    account = account_for(user, account_id, Action.MANAGE_BILLING)
    if request.method == "POST":
        form = BillingDetailsForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                account_billing_details_update(
                    account=account, actor=user, name=data["name"],
                    billing_address=data["billing_address"], country=data["country"],
                    vat_number=data["vat_number"], billing_email=data["billing_email"] or "",
                    time_zone=data["time_zone"] or "", ip=client_ip(request))
            except BillingDetailsInvalid as invalid:
                form.add_error(str(invalid.params.get("field")) or None, gettext(invalid.message))
            except InvalidVatNumber as invalid:
                form.add_error("vat_number", error_message(invalid))
            except ProrataError as refused:
                form.add_error(None, error_message(refused))
            else:
                messages.success(request, gettext(
                    "Billing details saved. Your next invoices and credit notes will show them; "
                    "documents already issued keep the details they were issued with."))
                return redirect("billing:details", account_id=account.pk)
    else:
        form = BillingDetailsForm(initial={
            "name": account.name, "billing_address": account.billing_address,
            "country": account.country, "vat_number": account.vat_number,
            "billing_email": account.billing_email,
            "time_zone": account.time_zone or default_time_zone(account.country)})
    context: dict[str, Any] = {
        "account": account, "form": form, "manage": True,
        "billing": can(user, Action.VIEW_BILLING, account), "cart_count": cart_count(account=account),
        "country_zone": default_time_zone(account.country),
    }
    return render(request, "web/billing/details.html", context,
                  status=422 if form.is_bound and form.errors else 200)
