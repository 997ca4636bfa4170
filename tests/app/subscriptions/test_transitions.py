"""The one writer of a subscription's status, checked against the core table for every move, and
the history selector that reads events and renewals as one timeline."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.db import transaction

from prorata.catalog.models import BillingCycle, Plan
from prorata.jobs.models import Renewal, RenewalStatus
from prorata.subscriptions.history import subscription_history
from prorata.subscriptions.models import Subscription, SubscriptionEvent, SubscriptionStatus
from prorata.subscriptions.transitions import (
    StaleSubscription,
    subscription_describe,
    subscription_transition,
)
from prorata.web.errors import error_message
from prorata_core.errors import TransitionRefused
from prorata_core.lifecycle import TRANSITIONS, Event, Status
from prorata_core.periods import utc
from tests.app.subscriptions.support import buy, card, customer, save_card

AT = utc(2026, 1, 1)


def _subscription(account, status: Status | None) -> Subscription:
    """A Lite monthly subscription of ``account`` in ``status`` (unsaved when ``None``)."""
    plan = Plan.objects.select_related("product").get(code="lite")
    row = Subscription(
        account=account, product=plan.product, plan=plan,
        cycle=BillingCycle.objects.get(code="monthly"), quantity=2, currency="USD",
        unit_amount=5900, anchor=AT, period_start=AT, period_end=utc(2026, 2, 1),
        invoiced_amount=11800, created_at=AT, status=(status or Status.ACTIVE).value,
    )
    if status is not None:
        row.save()
    return row


def _snapshot(account):
    return (list(Subscription.objects.filter(account=account).values_list("status", "version")),
            SubscriptionEvent.objects.filter(subscription__account=account).count())


@pytest.mark.parametrize(("current", "to"), list(itertools.product([None, *Status], list(Status))))
def test_the_service_allows_exactly_the_core_tables_transitions(acme, current, to):
    """Every (from, to) pair, by every event: written when the table lists it, else refused with
    nothing written. A new state therefore needs the core table's rows and nothing else here."""
    account, user = acme
    for event in Event:
        subscription = _subscription(account, current)
        before = _snapshot(account)
        allowed = event in TRANSITIONS.get((current, to), frozenset())
        with transaction.atomic():
            if not allowed:
                with pytest.raises(TransitionRefused) as refused:
                    subscription_transition(subscription=subscription, to=to, event=event, at=AT,
                                            actor=user)
                assert refused.value.params["to"] == to.value
                assert _snapshot(account) == before
                Subscription.objects.filter(account=account).delete()
                continue
            entry = subscription_transition(subscription=subscription, to=to, event=event, at=AT,
                                            actor=user)
        stored = Subscription.objects.get(pk=subscription.pk)
        assert (stored.status, stored.version) == (to.value, 1 if current is None else 2)
        assert (entry.kind, entry.at, entry.actor_id) == (event.value, AT, user.pk)
        assert entry.after["status"] == to.value and entry.after["version"] == stored.version
        assert entry.before == (None if current is None else
                                {**subscription_describe(stored), "status": current.value,
                                 "version": 1})
        Subscription.objects.filter(account=account).delete()


def test_every_stored_status_and_event_kind_is_the_cores():
    assert {choice.value for choice in SubscriptionStatus} == {status.value for status in Status}
    assert {event.value for event in Event} <= {kind.value for kind in SubscriptionEvent.Kind}


def test_a_refused_transition_is_a_translated_message(acme, settings):
    from django.utils import translation

    error = TransitionRefused("x", current="expired", to="past_due", event="payment_failed")
    with translation.override("fr"):
        assert error_message(error) == (
            "Cet abonnement a changé entre-temps : rien n'a été modifié. Rechargez la page et "
            "réessayez.")
    assert "nothing was changed" in error_message(error)


def test_other_fields_changed_by_the_caller_are_saved_with_the_status(acme):
    account, _user = acme
    subscription = _subscription(account, Status.ACTIVE)
    with transaction.atomic():
        subscription.quantity = 5
        subscription.auto_renew = False  # changed in memory but not named: not saved
        subscription_transition(subscription=subscription, to=Status.ACTIVE, event=Event.CHANGED,
                                at=AT, also=["quantity"], before={"note": "given"},
                                after={"note": "given too"})
    stored = Subscription.objects.get(pk=subscription.pk)
    assert (stored.quantity, stored.auto_renew, stored.version) == (5, True, 2)
    entry = SubscriptionEvent.objects.get(subscription=stored)
    assert entry.before == {"note": "given", "status": "active"}
    assert entry.after == {"note": "given too", "status": "active"}


def test_a_transition_from_a_stale_read_writes_nothing(acme):
    account, _user = acme
    subscription = _subscription(account, Status.ACTIVE)
    Subscription.objects.filter(pk=subscription.pk).update(status=Status.PAST_DUE.value)
    with transaction.atomic(), pytest.raises(StaleSubscription, match="no longer active"):
        subscription_transition(subscription=subscription, to=Status.EXPIRED,
                                event=Event.EXPIRED, at=AT)
    assert (subscription.status, subscription.version) == ("active", 1)
    stored = Subscription.objects.get(pk=subscription.pk)
    assert (stored.status, stored.version) == ("past_due", 1)
    assert not SubscriptionEvent.objects.filter(subscription=stored).exists()


@pytest.mark.django_db(transaction=True)
def test_a_transition_outside_a_transaction_is_refused(acme):
    account, _user = acme
    subscription = _subscription(account, Status.ACTIVE)
    with pytest.raises(RuntimeError, match=r"inside transaction\.atomic"):
        subscription_transition(subscription=subscription, to=Status.EXPIRED,
                                event=Event.EXPIRED, at=AT)
    assert Subscription.objects.get(pk=subscription.pk).status == "active"


def test_the_history_is_events_and_renewals_in_one_timeline(acme, clock):
    """A purchase (event), two renewals by the billing run (Renewal rows), a cancelled renewal
    (event) and the expiry (event), in the order they happened."""
    from prorata.jobs.billing_run import bill_run

    account, user = acme
    save_card(account, user)
    buy(account, user, "lite", "monthly", 2)
    subscription = Subscription.objects.get(account=account)
    clock.set(utc(2026, 2, 1, 1))
    bill_run()
    clock.set(utc(2026, 3, 1, 1))
    bill_run()
    from prorata.subscriptions.services import subscription_cancel_renewal

    clock.set(utc(2026, 3, 2))
    subscription_cancel_renewal(account=account, user=user, product_code="webinar")
    clock.set(utc(2026, 4, 1, 1))
    bill_run()

    history = subscription_history(subscription=subscription)
    assert [(entry.kind, entry.status_before, entry.status_after) for entry in history] == [
        ("purchased", None, "active"),
        ("renewed", None, None),
        ("renewed", None, None),
        ("renewal_stopped", "active", "active"),
        ("expired", "active", "expired"),
    ]
    assert [entry.at for entry in history] == sorted(entry.at for entry in history)
    renewals = list(Renewal.objects.filter(subscription=subscription).order_by("period_start"))
    assert [(entry.period, entry.invoice_id, entry.renewal_status) for entry in history[1:3]] == [
        ((renewal.period_start, renewal.period_end), renewal.invoice_id, RenewalStatus.PAID)
        for renewal in renewals
    ]
    assert history[0].order_id is not None and history[0].actor_id == user.pk
    assert history[1].label == "renewed"
    assert subscription_history(subscription=subscription.pk) == history


def test_a_renewal_comes_before_an_event_of_the_same_instant(acme):
    account, _user = acme
    buy(account, _user, "lite", "monthly", 1, card_token=card())
    subscription = Subscription.objects.get(account=account)
    event = subscription.events.get()
    Renewal.objects.create(subscription=subscription, account=account, period_start=AT,
                           period_end=AT + timedelta(days=31), invoice=subscription.invoice,
                           status=RenewalStatus.PAID, created_at=event.at)
    assert [entry.kind for entry in subscription_history(subscription=subscription)] == [
        "renewed", "purchased"]


def test_each_subscription_has_its_own_history(acme):
    account, _user = acme
    other, _other_user = customer("Other", "US", "o@other.example", currency="USD")
    mine, theirs = _subscription(account, Status.ACTIVE), _subscription(other, Status.ACTIVE)
    with transaction.atomic():
        subscription_transition(subscription=theirs, to=Status.EXPIRED, event=Event.EXPIRED,
                                at=AT)
    assert subscription_history(subscription=mine) == []
    assert [entry.kind for entry in subscription_history(subscription=theirs)] == ["expired"]


def test_trial_purchase_and_change_go_through_the_one_writer(acme, clock):
    """The checkout's status moves are the lifecycle's: each entry records the move and the
    version it left the subscription at."""
    from prorata.subscriptions.services import subscription_start_trial

    account, user = acme
    subscription = subscription_start_trial(account=account, product_code="webinar", actor=user)
    clock.set(utc(2026, 1, 5))
    buy(account, user, "lite", "monthly", 2, card_token=card())
    clock.set(utc(2026, 1, 20))
    buy(account, user, "standard", "monthly", 2)
    history = subscription_history(subscription=subscription)
    assert [(entry.kind, entry.status_before, entry.status_after, entry.after["version"])
            for entry in history] == [
        ("trial_started", None, "trialing", 1),
        ("purchased", "trialing", "active", 3),
        ("changed", "active", "active", 5),
    ]
    stored = Subscription.objects.get(pk=subscription.pk)
    assert (stored.status, stored.version, stored.plan.code) == ("active", 5, "standard")
    assert history[2].before["plan"] == "lite" and history[2].after["plan"] == "standard"


def test_a_past_due_renewal_paid_on_retry_is_a_renewal_paid_entry(acme, clock):
    """Dunning through the one writer: the failed charge (active → past_due) and the retry that
    pays (past_due → active), each a history entry beside the period's renewal."""
    from prorata.jobs.billing_run import bill_run
    from prorata.payments.models import SandboxCard

    account, user = acme
    save_card(account, user)
    buy(account, user, "lite", "monthly", 1)
    subscription = Subscription.objects.get(account=account)
    SandboxCard.objects.update(behaviour="decline")
    clock.set(utc(2026, 2, 1, 1))
    bill_run()
    assert Subscription.objects.get(pk=subscription.pk).status == "past_due"
    SandboxCard.objects.update(behaviour="succeed")
    clock.set(utc(2026, 2, 2, 2))
    bill_run()
    stored = Subscription.objects.get(pk=subscription.pk)
    history = subscription_history(subscription=subscription)
    assert [(entry.kind, entry.status_after) for entry in history] == [
        ("purchased", "active"), ("renewed", None), ("payment_failed", "past_due"),
        ("renewal_paid", "active"),
    ]
    assert history[3].status_before == "past_due"
    assert history[1].renewal_status == RenewalStatus.PAID
    assert history[3].after == {"invoice": stored.invoice.number, "status": "active"}
    assert history[3].label == "renewal invoice paid"
