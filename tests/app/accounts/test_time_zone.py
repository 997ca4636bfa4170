"""The account's time zone (issue 16): accounts made before the setting get their country's zone by
migration, every new account gets one, and the dates of e-mails and PDFs are written in it, the zone
named (a period's boundaries are instants: 2026-03-31T23:30Z is already April 1st in Paris)."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as django_apps

from prorata.accounts.billing_details import account_billing_details_update
from prorata.accounts.models import Account
from prorata.accounts.services import account_create
from prorata.billing.models import Document, DocumentKind
from prorata.billing.receipts import document_pdf
from prorata.notifications.models import OutboxMessage
from prorata.notifications.outbox import render_message
from prorata_core.periods import utc
from tests.app.billing.test_pdf import text_of
from tests.app.subscriptions.support import buy, card, customer

pytestmark = pytest.mark.django_db

migration = importlib.import_module("prorata.accounts.migrations.0005_account_time_zone_from_country")


def test_accounts_made_before_the_setting_get_their_country_s_zone(clock):
    clock.set(utc(2026, 1, 1))
    # Given accounts saved without a zone (as before the setting, the demo's among them)
    old = {country: Account.objects.create(name=f"Old {country}", country=country,
                                           created_at=utc(2025, 6, 1))
           for country in ("FR", "US", "JP", "DE")}
    chosen = Account.objects.create(name="Chosen", country="FR", time_zone="America/Cayenne",
                                    created_at=utc(2025, 6, 1))
    assert set(Account.objects.values_list("time_zone", flat=True)) == {"", "America/Cayenne"}
    # when the data migration runs
    migration.zones_from_countries(django_apps, None)
    # then each has its country's main zone, and a chosen zone is kept
    zones = dict(Account.objects.filter(pk__in=[a.pk for a in old.values()])
                 .values_list("country", "time_zone"))
    assert zones == {"FR": "Europe/Paris", "US": "America/New_York", "JP": "Asia/Tokyo",
                     "DE": "Europe/Berlin"}
    chosen.refresh_from_db()
    assert chosen.time_zone == "America/Cayenne"


def test_a_new_account_gets_its_country_s_zone_unless_given_one(clock):
    clock.set(utc(2026, 1, 1))
    assert account_create(name="Berlin GmbH", country="de").time_zone == "Europe/Berlin"
    assert account_create(name="Nowhere", country="ZZ").time_zone == "UTC"
    assert account_create(name="Réunion", country="FR",
                          time_zone="Indian/Reunion").time_zone == "Indian/Reunion"


def _receipt_at_month_end(clock, country: str, language: str, zone: str = ""):
    # a purchase at 2026-03-31T23:30Z: its period starts on April 1st in Paris, March 31st in
    # New York
    clock.set(utc(2026, 3, 31, 23, 30))
    account, user = customer("Nord Conseil", country, f"ana@{country.lower()}.example",
                             currency="EUR" if country == "FR" else "USD", language=language)
    user.language = language
    user.save(update_fields=["language"])
    if zone:
        account_billing_details_update(
            account=account, actor=user, name="Nord Conseil", billing_address="", country=country,
            vat_number="", billing_email="", time_zone=zone)
    buy(account, user, "lite", "monthly", 1, card_token=card())
    message = OutboxMessage.objects.get(template="receipt", to=user.email)
    return account, render_message(message)


def test_an_e_mail_writes_its_dates_in_the_account_s_zone_and_names_it(clock, demo_catalog):
    account, email = _receipt_at_month_end(clock, "FR", "fr")
    assert account.time_zone == "Europe/Paris"
    html = email.alternatives[0][0]
    for text in (email.body, html):
        assert "1er avril 2026" in text and "31 mars" not in text
        assert "Les dates sont dans le fuseau horaire Europe/Paris." in text


def test_a_us_account_reads_the_same_instant_on_the_day_before(clock, demo_catalog):
    _account, email = _receipt_at_month_end(clock, "US", "en")
    assert "March 31, 2026" in email.body and "April 1, 2026" not in email.body
    assert "Dates are in the America/New_York time zone." in email.body


def test_a_pdf_writes_its_dates_in_the_account_s_zone_and_names_it(clock, demo_catalog):
    account, _email = _receipt_at_month_end(clock, "FR", "fr")
    invoice = Document.objects.get(account=account, kind=DocumentKind.INVOICE)
    text = " ".join(text_of(document_pdf(document=invoice, language="fr")[1]).split())
    assert "Dates dans le fuseau horaire Europe/Paris" in text
    assert "Date d'émission : 1er avril 2026" in text and "31 mars" not in text
    # an account without a stored zone (made by hand) reads its country's
    Account.objects.filter(pk=account.pk).update(time_zone="")
    invoice = Document.objects.get(pk=invoice.pk)
    text = " ".join(text_of(document_pdf(document=invoice, language="en")[1]).split())
    assert "Dates in the Europe/Paris time zone" in text and "April 1, 2026" in text


def test_the_chosen_zone_wins_over_the_country_s(clock, demo_catalog):
    _account, email = _receipt_at_month_end(clock, "FR", "en", zone="America/Martinique")
    assert "March 31, 2026" in email.body
    assert "Dates are in the America/Martinique time zone." in email.body
