"""Delivery to a real HTTP receiver on 127.0.0.1 that is down, slow, answers 500 and comes back:
every event delivered, every signature verified by the docs' own receiver snippet, repeats and
replays recognised by event id; three days of failures give up and flag the endpoint; a secret's
rotation signs with both secrets during the overlap."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from prorata.accounts.models import AuditEntry
from prorata.accounts.services import account_create
from prorata.webhooks.delivery import RETRY_FOR, retry_delay, webhooks_deliver
from prorata.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent
from prorata.webhooks.services import webhook_deliveries_replay, webhook_endpoint_rotate_secret
from tests.app.webhooks.receiver import Receiver
from tests.app.webhooks.support import endpoint, operator, receiver_snippet

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    made = Receiver()
    made.reserve_port()
    yield made
    made.stop()


@pytest.fixture(autouse=True)
def quick_timeout(settings):
    settings.PRORATA_WEBHOOK_TIMEOUT = 0.5


def deliver() -> dict[str, int]:
    return webhooks_deliver(threads=1)


def statuses() -> list[str]:
    return list(WebhookDelivery.objects.order_by("id").values_list("status", flat=True))


def test_down_slow_failing_then_back_every_event_delivered_and_verified(clock, receiver):
    hook, secret = endpoint(receiver.url, ["customer.created"])
    for name in ("One", "Two", "Three"):
        account_create(name=name, country="FR")
    event_ids = set(WebhookEvent.objects.values_list("event_id", flat=True))
    assert len(event_ids) == 3 and statuses() == ["pending"] * 3

    # Down: the first attempt is refused; the other two are not tried, and wait as long.
    assert deliver() == {"sent": 0, "failed": 1, "gave_up": 0, "released": 2}
    first = WebhookDelivery.objects.order_by("id").first()
    assert first.attempts == 1 and "ConnectionRefusedError" in first.last_error
    assert set(WebhookDelivery.objects.values_list("next_attempt_at", flat=True)) == {
        clock.now() + retry_delay(1)}
    assert deliver() == {"sent": 0, "failed": 0, "gave_up": 0, "released": 0}  # not due yet

    # Slow: an answer after the timeout is a failure (the receiver got it, though).
    receiver.mode, receiver.delay = "slow", 1.0
    receiver.start()
    clock.advance(timedelta(seconds=31))
    assert deliver() == {"sent": 0, "failed": 1, "gave_up": 0, "released": 2}
    assert "timed out" in WebhookDelivery.objects.order_by("id").first().last_error

    # 500: each attempt fails on its own (the endpoint is reachable).
    receiver.mode = "error"
    clock.advance(timedelta(minutes=2))
    assert deliver() == {"sent": 0, "failed": 3, "gave_up": 0, "released": 0}
    assert set(WebhookDelivery.objects.values_list("last_status_code", flat=True)) == {500}
    assert WebhookDelivery.objects.first().last_error == "HTTP 500: oops"

    # Back: everything is delivered, once each as far as the records go.
    receiver.mode = "ok"
    clock.advance(timedelta(minutes=5))
    assert deliver() == {"sent": 3, "failed": 0, "gave_up": 0, "released": 0}
    assert statuses() == ["succeeded"] * 3
    assert set(WebhookDelivery.objects.values_list("last_status_code", flat=True)) == {204}

    receiver.wait_for(7)  # the slow one, 500 three times, the three delivered
    snippet = receiver_snippet()
    bodies = [snippet.verify_prorata_webhook(item.body, item.headers["Prorata-Signature"],
                                             secret) for item in receiver.received]
    assert {body["id"] for body in bodies} == event_ids  # every event, every signature genuine
    taken = [json.loads(item.body)["id"] for item in receiver.taken()]
    # The slow answer arrived too: one event twice, recognised by its id.
    assert len(taken) == 4 and set(taken) == event_ids
    body = bodies[-1]
    assert set(body) == {"id", "type", "created", "api_version", "data"}
    assert body["type"] == "customer.created" and body["api_version"] == "2026-12-01"
    assert body["created"] == "2026-03-11T00:00:00Z" and body["data"]["object"] == "customer"
    assert receiver.received[-1].headers["Prorata-Event-Id"] == body["id"]
    with pytest.raises(snippet.InvalidSignature):
        snippet.verify_prorata_webhook(receiver.received[-1].body,
                                       receiver.received[-1].headers["Prorata-Signature"],
                                       "whsec_not-the-secret")

    # A replay from the console: the same event id again, which a receiver drops.
    replayed = WebhookDelivery.objects.order_by("id").first()
    assert webhook_deliveries_replay(actor=operator(), ids=[replayed.pk]) == 1
    assert AuditEntry.objects.filter(action="webhook.delivery.replay").count() == 1
    assert deliver()["sent"] == 1
    again = json.loads(receiver.received[-1].body)["id"]
    assert again == replayed.event.event_id and again in taken
    assert hook.deliveries.filter(status=DeliveryStatus.SUCCEEDED).count() == 3


def test_three_days_of_failures_give_up_and_flag_the_endpoint_until_a_success(clock, receiver):
    receiver.mode = "error"
    receiver.start()
    hook, _ = endpoint(receiver.url, ["customer.created"])
    account_create(name="Unlucky", country="FR")
    created = clock.now()
    attempts = 0
    while WebhookDelivery.objects.get().status == DeliveryStatus.PENDING:
        counts = deliver()
        attempts += 1
        assert counts["failed"] + counts["gave_up"] == 1
        assert attempts < 40
        if counts["gave_up"]:
            break
        clock.advance(WebhookDelivery.objects.get().next_attempt_at - clock.now())
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == attempts
    assert delivery.last_attempt_at == created + RETRY_FOR  # one last attempt at three days
    assert 15 <= attempts <= 25  # 30 s doubling to 6 h, for three days
    hook.refresh_from_db()
    assert hook.failing_since == created + RETRY_FOR

    receiver.mode = "ok"
    account_create(name="Lucky", country="FR")
    assert deliver()["sent"] == 1
    hook.refresh_from_db()
    assert hook.failing_since is None
    # The given-up delivery is replayable: three more days, then delivered.
    webhook_deliveries_replay(actor=operator(), ids=[delivery.pk])
    assert deliver()["sent"] == 1


def test_a_rotated_secret_signs_with_both_during_the_overlap_then_alone(clock, receiver):
    receiver.start()
    hook, old = endpoint(receiver.url, ["customer.created"])
    rotated = webhook_endpoint_rotate_secret(actor=operator(), endpoint_id=hook.pk,
                                             overlap=timedelta(hours=24))
    new = rotated.secret
    assert new != old and new.startswith("whsec_")
    audit = AuditEntry.objects.get(action="webhook.endpoint.rotate_secret")
    assert old not in json.dumps(audit.after) and new not in json.dumps(audit.after)
    account_create(name="During", country="FR")
    deliver()
    snippet = receiver_snippet()
    during = receiver.received[-1]
    header = during.headers["Prorata-Signature"]
    assert header.count("v1=") == 2
    for secret in (old, new, [new, old]):
        snippet.verify_prorata_webhook(during.body, header, secret)
    timestamp = int(header.split(",")[0][2:])
    with pytest.raises(snippet.InvalidSignature, match="tolerance"):
        snippet.verify_prorata_webhook(during.body, header, new, now=timestamp + 301)
    snippet.verify_prorata_webhook(during.body, header, new, now=timestamp - 299)
    with pytest.raises(snippet.InvalidSignature):  # the body is what is signed
        snippet.verify_prorata_webhook(during.body.replace(b"During", b"Durinh"), header, new)

    clock.advance(timedelta(hours=25))
    account_create(name="After", country="FR")
    deliver()
    after = receiver.received[-1]
    assert after.headers["Prorata-Signature"].count("v1=") == 1
    snippet.verify_prorata_webhook(after.body, after.headers["Prorata-Signature"], new)
    with pytest.raises(snippet.InvalidSignature):
        snippet.verify_prorata_webhook(after.body, after.headers["Prorata-Signature"], old)


def test_an_inactive_endpoint_keeps_its_deliveries_waiting(clock, receiver):
    from prorata.webhooks.services import webhook_endpoint_update

    receiver.start()
    hook, _ = endpoint(receiver.url, ["customer.created"])
    account_create(name="Waiting", country="FR")
    webhook_endpoint_update(actor=operator(), endpoint_id=hook.pk, url=hook.url,
                            event_types=hook.event_types, is_active=False)
    assert deliver()["sent"] == 0 and statuses() == ["pending"]
    WebhookEndpoint.objects.filter(pk=hook.pk).update(is_active=True)
    assert deliver()["sent"] == 1 and receiver.taken()


@pytest.mark.django_db(transaction=True)
def test_each_endpoint_on_its_own_thread_a_dead_or_slow_one_delays_only_itself(clock, settings):
    from prorata.accounts.models import User

    settings.PRORATA_WEBHOOK_TIMEOUT = 2.0
    # No staff group: a transactional test may start on a flushed database (the services do
    # not check roles; the console does).
    actor = User.objects.create_user("threads@prorata.example", "pw", is_staff=True)
    down, slow, fine = Receiver(), Receiver(mode="slow", delay=0.2), Receiver()
    down.reserve_port()
    slow.start()
    fine.start()
    try:
        hooks = [endpoint(item.url, ["customer.created"], actor=actor)[0]
                 for item in (down, slow, fine)]
        for index in range(5):
            account_create(name=f"Threaded {index}", country="FR")
        counts = webhooks_deliver(threads=3)
        assert counts == {"sent": 10, "failed": 1, "gave_up": 0, "released": 4}
        assert len(slow.taken()) == 5 and len(fine.taken()) == 5
        assert hooks[0].deliveries.filter(status=DeliveryStatus.PENDING).count() == 5
    finally:
        slow.stop()
        fine.stop()
