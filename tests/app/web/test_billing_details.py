"""Billing details (issue 16): legal name, address, country, VAT number, billing e-mail and time
zone, printed on every document issued afterwards."""

from __future__ import annotations

import pytest

from prorata.accounts.billing_details import account_time_zone
from prorata.accounts.countries import default_time_zone
from prorata.accounts.models import AuditEntry
from prorata.billing.models import Document
from prorata_core.periods import utc
from tests.app.subscriptions.support import buy
from tests.app.web.billing_support import bistro_world, member
from tests.app.web.conftest import page_text

pytestmark = pytest.mark.usefixtures("demo_catalog")

DETAILS = {"name": "Bistro Numérique SAS", "billing_address": "3 place du Marché\n69002 Lyon",
           "country": "FR", "vat_number": "fr 40 303 265 045",
           "billing_email": "Compta@Bistro.example", "time_zone": "Europe/Paris"}


def test_details_are_saved_audited_and_printed_on_the_next_invoice(clock):
    bistro = bistro_world(clock)
    before = Document.objects.filter(account=bistro.account).count()
    response = bistro.client().post(f"{bistro.url}details/", DETAILS)
    assert response.status_code == 302
    account = bistro.account
    account.refresh_from_db()
    assert (account.name, account.vat_number, account.billing_email, account.time_zone) == (
        "Bistro Numérique SAS", "FR40303265045", "compta@bistro.example", "Europe/Paris")
    assert account.billing_address == "3 place du Marché\n69002 Lyon"
    audit = AuditEntry.objects.get(action="account.billing_details", account=account)
    assert audit.before["vat_number"] == "" and audit.after["vat_number"] == "FR40303265045"

    # the next document (a change on 2026-03-11) prints them
    clock.set(utc(2026, 3, 11))
    buy(account, bistro.user, "standard", "monthly", 5)
    newest = Document.objects.filter(account=account, kind="invoice").order_by("-id").first()
    assert Document.objects.filter(account=account).count() > before
    assert newest.snapshot["buyer"] == {
        "name": "Bistro Numérique SAS", "address": "3 place du Marché\n69002 Lyon",
        "country": "FR", "vat_number": "FR40303265045", "email": "compta@bistro.example"}
    # the first invoice keeps what it was issued with
    first = Document.objects.filter(account=account).order_by("id").first()
    assert first.snapshot["buyer"]["name"] == "Bistro Numérique"


@pytest.mark.parametrize(("changes", "message"), [
    ({"name": " "}, "This field is required."),
    ({"vat_number": "FR12345"}, "VAT"),
    ({"country": "XX"}, "Select a valid choice"),
    ({"billing_email": "compta@"}, "Enter a valid e-mail address."),
    ({"time_zone": "Mars/Olympus"}, "Select a valid choice"),
])
def test_bad_details_say_what_is_wrong_and_change_nothing(clock, changes, message):
    bistro = bistro_world(clock)
    response = bistro.client().post(f"{bistro.url}details/", {**DETAILS, **changes})
    assert response.status_code == 422
    assert message in page_text(response)
    bistro.account.refresh_from_db()
    assert bistro.account.name == "Bistro Numérique" and bistro.account.vat_number == ""
    assert not AuditEntry.objects.filter(action="account.billing_details").exists()


def test_only_a_billing_contact_edits_them(clock):
    bistro = bistro_world(clock)
    admin = member(bistro, "admin@bistro.example", admin=True)
    assert bistro.client(admin).get(f"{bistro.url}details/").status_code == 403
    assert bistro.client(admin).post(f"{bistro.url}details/", DETAILS).status_code == 403


def test_the_page_is_in_french_with_the_country_zone(clock):
    bistro = bistro_world(clock)
    client = bistro.client()
    client.cookies["django_language"] = "fr"
    text = page_text(client.get(f"{bistro.url}details/"))
    assert "Coordonnées de facturation" in text and "Europe/Paris" in text


def test_time_zone_defaults_from_the_country():
    assert default_time_zone("FR") == "Europe/Paris"
    assert default_time_zone("US") == "America/New_York"
    assert default_time_zone("JP") == "Asia/Tokyo"
    assert default_time_zone("ZZ") == "UTC"


def test_an_account_without_a_chosen_zone_shows_its_country_s(clock, demo_catalog):
    bistro = bistro_world(clock)
    assert bistro.account.time_zone == "Europe/Paris"  # given when the account was made
    bistro.account.time_zone = ""  # one made without it (before the setting, or by hand)
    assert account_time_zone(bistro.account) == "Europe/Paris"
    bistro.account.time_zone = "America/Martinique"
    assert account_time_zone(bistro.account) == "America/Martinique"
    bistro.account.country, bistro.account.time_zone = "US", ""
    assert account_time_zone(bistro.account) == "America/New_York"


def test_dates_follow_the_accounts_zone_and_name_it_where_the_instant_matters(clock):
    # Bistro's period 2026-03-01 → 2026-04-01 (00:00 UTC); shown in New York it starts the day
    # before, and the renewal instant is named with its zone.
    bistro = bistro_world(clock)
    client = bistro.client()
    client.post(f"{bistro.url}details/", {**DETAILS, "time_zone": "America/New_York"})
    text = page_text(client.get(bistro.url))
    assert "February 28, 2026, 7:00 PM – March 31, 2026, 8:00 PM (America/New_York)" in text
    assert "March 31, 2026 at 8:00 PM (America/New_York)" in text
    client.post(f"{bistro.url}details/", {**DETAILS, "time_zone": "Europe/Paris"})
    client.cookies["django_language"] = "fr"
    text = page_text(client.get(bistro.url)).replace("\u202f", " ")
    assert "1er mars 2026, 01:00 – 1er avril 2026, 02:00 (Europe/Paris)" in text
    assert "1er avril 2026 à 02:00 (Europe/Paris)" in text
