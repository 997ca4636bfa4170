"""Webinars (DESIGN §4, S5): scheduling by licensed organizers, limits, registration, refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client

from prorata.accounts.models import AuditEntry
from prorata.catalog.models import Plan
from prorata.licenses.services import license_assign, license_unassign
from prorata.notifications.models import OutboxMessage
from prorata.notifications.outbox import outbox_deliver
from prorata.subscriptions.models import Subscription, SubscriptionStatus
from prorata.webinars.errors import (
    AlreadyRegistered,
    HostingRefused,
    RegistrationClosed,
    WebinarFull,
    WebinarNotFound,
)
from prorata.webinars.models import Registration, Webinar
from prorata.webinars.selectors import upcoming_webinars, webinar_limit
from prorata.webinars.services import (
    registration_create,
    webinar_cancel,
    webinar_schedule,
    webinar_update,
)
from prorata_core.errors import ValidationError
from tests.app.licenses.support import acme
from tests.app.subscriptions.support import buy
from tests.app.web.conftest import page_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(clock, demo_catalog):
    world = acme(clock)
    license_assign(actor=world.alice, account=world.account,
                   subscription_id=world.subscription.pk,
                   member_id=world.membership(world.carol).pk)
    return world


def schedule(world, clock, *, days=10, user=None, title="Spring launch"):
    return webinar_schedule(organizer=user or world.carol, account=world.account, title=title,
                            starts_at=clock.now() + timedelta(days=days), duration_minutes=60,
                            time_zone="America/New_York")


def test_a_licensed_organizer_schedules_with_the_plans_limit(world, clock):
    webinar = schedule(world, clock)
    assert webinar.limit_when_scheduled == 500  # Standard
    assert webinar_limit(webinar) == 500
    assert AuditEntry.objects.get(action="webinar.schedule").actor_email == "carol@acme.example"


def test_without_a_license_no_new_webinar_but_the_old_ones_stay(world, clock):
    kept = schedule(world, clock)
    license_unassign(actor=world.bob, account=world.account,
                     subscription_id=world.subscription.pk,
                     member_id=world.membership(world.carol).pk)
    with pytest.raises(HostingRefused) as refused:
        schedule(world, clock)
    assert refused.value.params["reason"] == "no_license"
    row, = upcoming_webinars(account=world.account)
    assert row.webinar == kept and not row.host_licensed
    text = page_text(world.client(world.bob).get(f"/billing/{world.account.pk}/webinars/"))
    assert "host has no license" in text


@pytest.mark.parametrize("status, reason, says", [
    (SubscriptionStatus.EXPIRED, "expired", "Subscribe now"),
    (SubscriptionStatus.PAST_DUE, "past_due", "Pay now"),
])
def test_an_expired_or_past_due_subscription_blocks_scheduling(world, clock, status, reason,
                                                               says):
    Subscription.objects.filter(pk=world.subscription.pk).update(status=status)
    with pytest.raises(HostingRefused) as refused:
        schedule(world, clock)
    assert refused.value.params["reason"] == reason
    response = world.client(world.carol).get(f"/billing/{world.account.pk}/webinars/new/")
    assert says in page_text(response)


def test_bad_input_is_refused_with_the_field_named(world, clock):
    for kwargs, field in [({"title": " "}, "title"), ({"days": -1}, "starts_at")]:
        with pytest.raises(ValidationError) as refused:
            schedule(world, clock, **kwargs)
        assert refused.value.params["field"] == field
    with pytest.raises(ValidationError):
        webinar_schedule(organizer=world.carol, account=world.account, title="x",
                         starts_at=clock.now() + timedelta(days=1), duration_minutes=60,
                         time_zone="Mars/Olympus")
    assert not Webinar.objects.exists()


def test_an_upgrade_raises_every_upcoming_webinar_at_once(world, clock):
    first, second = schedule(world, clock), schedule(world, clock, days=20)
    clock.advance(timedelta(days=1))
    buy(world.account, world.alice, "pro", "annual", 2)
    assert [webinar_limit(w) for w in (first, second)] == [1000, 1000]


def test_the_organizer_edits_and_cancels(world, clock):
    webinar = schedule(world, clock)
    moved = webinar_update(user=world.carol, account=world.account, webinar_id=webinar.pk,
                           title="Moved", starts_at=clock.now() + timedelta(days=12),
                           duration_minutes=90, time_zone="Europe/Paris")
    assert (moved.title, moved.duration_minutes, moved.time_zone) == ("Moved", 90, "Europe/Paris")
    with pytest.raises(WebinarNotFound):  # not bob's webinar
        webinar_update(user=world.bob, account=world.account, webinar_id=webinar.pk,
                       title="x", starts_at=clock.now() + timedelta(days=3),
                       duration_minutes=60, time_zone="UTC")
    webinar_cancel(user=world.carol, account=world.account, webinar_id=webinar.pk)
    assert upcoming_webinars(account=world.account) == []


def test_registration_confirms_refuses_duplicates_and_past_the_limit(world, clock):
    webinar = schedule(world, clock)
    registration_create(public_id=webinar.public_id, name="Vic", email="vic@example.com")
    outbox_deliver()
    sent = [m for m in mail.outbox if m.to == ["vic@example.com"]]
    assert "Spring launch" in sent[0].subject and "(America/New_York)" in sent[0].body
    with pytest.raises(AlreadyRegistered):
        registration_create(public_id=webinar.public_id, name="Vic", email="VIC@example.com")
    # A one-seat webinar: the plan allows one participant, and so did it when scheduled.
    Plan.objects.filter(code="standard").update(participant_limit=1)
    Webinar.objects.filter(pk=webinar.pk).update(limit_when_scheduled=1)
    with pytest.raises(WebinarFull) as refused:
        registration_create(public_id=webinar.public_id, name="Wil", email="wil@example.com")
    assert Registration.objects.count() == 1
    assert refused.value.params["limit"] == 1


def test_registration_closes_at_the_start(world, clock):
    webinar = schedule(world, clock, days=1)
    clock.advance(timedelta(days=1))
    with pytest.raises(RegistrationClosed):
        registration_create(public_id=webinar.public_id, name="Vic", email="vic@example.com")


def test_the_public_page_registers_a_visitor_and_says_why_not(world, clock):
    webinar = schedule(world, clock)
    client = Client()
    url = f"/webinars/{webinar.public_id}/"
    assert "Spring launch" in page_text(client.get(url))
    done = client.post(url, {"name": "Vic", "email": "vic@example.com"})
    assert "You are registered" in page_text(done)
    again = client.post(url, {"name": "Vic", "email": "vic@example.com"})
    assert again.status_code == 409
    assert "already registered" in page_text(again)
    assert client.post(url, {"name": "", "email": "nope"}).status_code == 422
    assert Client().get("/webinars/no-such-id/").status_code == 404


def test_the_schedule_page_shows_the_start_in_the_organizers_zone(world, clock):
    client = world.client(world.carol)
    response = client.post(f"/billing/{world.account.pk}/webinars/new/", {
        "title": "Zone test", "start": "2026-03-20T15:00", "duration_minutes": "45",
        "time_zone": "Europe/Paris"})
    assert response.status_code == 302
    webinar = Webinar.objects.get(title="Zone test")
    assert webinar.starts_at.isoformat() == "2026-03-20T14:00:00+00:00"
    text = page_text(client.get(f"/billing/{world.account.pk}/webinars/"))
    assert "3:00 PM (Europe/Paris)" in text
    french = page_text(client.get(f"/billing/{world.account.pk}/webinars/",
                                  HTTP_ACCEPT_LANGUAGE="fr"))
    assert "15:00 (Europe/Paris)" in french and "Webinaires" in french


def test_the_schedule_page_refuses_bad_input_clearly(world, clock):
    client = world.client(world.carol)
    response = client.post(f"/billing/{world.account.pk}/webinars/new/", {
        "title": "Past", "start": "2025-12-01T15:00", "duration_minutes": "45",
        "time_zone": "Europe/Paris"})
    assert response.status_code == 422
    assert "must be in the future" in page_text(response)
    assert not Webinar.objects.exists()
    assert OutboxMessage.objects.filter(template="webinar_registration").count() == 0
