"""The console's webhook pages: an operator registers an endpoint (the secret shown once,
audited without it), rotates its secret, sees a failing endpoint flagged, browses deliveries
without the events' customer data and replays them; other staff roles cannot."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client

from prorata.accounts.models import AuditEntry
from prorata.accounts.services import account_create
from prorata.common.clock import now
from prorata.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from tests.app.console_auth import console_login
from tests.app.subscriptions.support import staff
from tests.app.webhooks.support import endpoint, operator

pytestmark = pytest.mark.django_db

ADD = "/console/webhooks/webhookendpoint/add/"


def test_an_operator_registers_an_endpoint_and_sees_its_secret_once(clock):
    client = console_login(Client(), operator())
    assert client.get(ADD).status_code == 200
    response = client.post(ADD, {"url": "https://hooks.example.com/prorata",
                                 "description": "Our backend",
                                 "event_types": ["invoice.paid", "customer.created"]})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    hook = WebhookEndpoint.objects.get()
    page = response.content.decode()
    assert hook.secret in page and "not shown again" in page
    assert hook.event_types == ["customer.created", "invoice.paid"] and hook.is_active
    audit = AuditEntry.objects.get(action="webhook.endpoint.create")
    assert audit.actor.email == "operator@prorata.example" and audit.ip == "127.0.0.1"
    assert hook.secret not in str(audit.after)
    change = client.get(f"/console/webhooks/webhookendpoint/{hook.pk}/change/").content.decode()
    assert hook.secret not in change and f"whsec_…{hook.secret[-4:]}" in change


def test_a_bad_endpoint_is_refused_on_the_form_with_nothing_written(clock):
    client = console_login(Client(), operator())
    for data in ({"url": "ftp://hooks.example.com", "event_types": ["invoice.paid"]},
                 {"url": "https://user:pw@hooks.example.com", "event_types": ["invoice.paid"]},
                 {"url": "https://hooks.example.com", "event_types": []},
                 {"url": "https://hooks.example.com", "event_types": ["invoice.exploded"]}):
        response = client.post(ADD, data)
        assert response.status_code == 200 and b"errorlist" in response.content
    assert not WebhookEndpoint.objects.exists() and not AuditEntry.objects.filter(
        action__startswith="webhook.").exists()


def test_an_operator_rotates_the_secret_with_an_overlap(clock):
    hook, old = endpoint("https://hooks.example.com/prorata")
    client = console_login(Client(), operator())
    url = f"/console/webhooks/webhookendpoint/{hook.pk}/rotate/"
    assert b"Overlap" in client.get(url).content
    assert b"whole number" in client.post(url, {"overlap_hours": "soon"}).content
    assert b"between 0 and 7 days" in client.post(url, {"overlap_hours": "200"}).content
    hook.refresh_from_db()
    assert hook.secret == old  # refused: nothing changed
    response = client.post(url, {"overlap_hours": "48"})
    hook.refresh_from_db()
    assert hook.secret != old and hook.secret in response.content.decode()
    assert hook.previous_secret == old
    assert hook.previous_secret_until == now() + timedelta(hours=48)
    assert AuditEntry.objects.filter(action="webhook.endpoint.rotate_secret").count() == 1


def test_deliveries_are_browsed_without_customer_data_and_replayed(clock):
    hook, _ = endpoint("https://hooks.example.com/prorata", ["customer.created"])
    account_create(name="Secret Customer Qzq", country="FR")
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED)
    WebhookEndpoint.objects.filter(pk=hook.pk).update(failing_since=now())
    client = console_login(Client(), operator())
    listing = client.get("/console/webhooks/webhookendpoint/").content.decode()
    assert "failing since" in listing and "1 endpoint is failing" in listing
    deliveries = client.get("/console/webhooks/webhookdelivery/").content.decode()
    assert delivery.event.event_id in deliveries and "customer.created" in deliveries
    page = client.get(f"/console/webhooks/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert delivery.event.event_id in page and "Qzq" not in page and "Qzq" not in deliveries
    response = client.post("/console/webhooks/webhookdelivery/", {
        "action": "replay", "_selected_action": [delivery.pk]}, follow=True)
    assert b"will be sent again" in response.content
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.next_attempt_at == now()
    assert AuditEntry.objects.get(action="webhook.delivery.replay").actor.email == (
        "operator@prorata.example")


def test_superusers_see_the_body_and_support_agents_see_no_webhook_page(clock, admin_client):
    endpoint("https://hooks.example.com/prorata", ["customer.created"])
    account_create(name="Body Qzq", country="FR")
    delivery = WebhookDelivery.objects.get()
    page = admin_client.get(f"/console/webhooks/webhookdelivery/{delivery.pk}/change/")
    assert re.search(r"Body Qzq", page.content.decode())
    agent = console_login(Client(), staff("agent@prorata.example", "support_agent"))
    for url in ("/console/webhooks/webhookendpoint/", "/console/webhooks/webhookdelivery/",
                ADD):
        assert agent.get(url).status_code == 403
