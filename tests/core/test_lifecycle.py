"""The lifecycle table and the dunning schedule (DESIGN §3 "Renewal")."""

import itertools
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prorata_core.errors import InvalidInstant, TransitionRefused
from prorata_core.lifecycle import (
    RETRY_DAYS,
    TRANSITIONS,
    Event,
    Status,
    attempts_left,
    attempts_made_by,
    check_transition,
    is_allowed,
    next_attempt_at,
)
from prorata_core.periods import utc

T, A, P, E = Status.TRIALING, Status.ACTIVE, Status.PAST_DUE, Status.EXPIRED
FIRST_FAILURE = utc(2026, 4, 11, 0, 0, 7)


def test_the_table_is_the_lifecycle_design_describes():
    assert {pair: set(events) for pair, events in TRANSITIONS.items()} == {
        (None, T): {Event.TRIAL_STARTED},
        (None, A): {Event.PURCHASED},
        (T, A): {Event.PURCHASED},
        (T, E): {Event.EXPIRED},
        (A, A): {Event.CHANGED, Event.RENEWED},
        (A, P): {Event.PAYMENT_FAILED},
        (A, E): {Event.EXPIRED},
        (P, A): {Event.RENEWAL_PAID, Event.CHANGED},
        (P, P): {Event.PAYMENT_FAILED},
        (P, E): {Event.EXPIRED},
        (E, A): {Event.REACTIVATED},
    }


def test_the_table_cannot_be_changed_at_run_time():
    with pytest.raises(TypeError):
        TRANSITIONS[(E, T)] = frozenset({Event.TRIAL_STARTED})  # type: ignore[index]


@pytest.mark.parametrize(
    ("current", "to", "event"),
    list(itertools.product([None, *Status], list(Status), list(Event))),
)
def test_every_triple_is_allowed_exactly_when_the_table_lists_it(current, to, event):
    listed = event in TRANSITIONS.get((current, to), frozenset())
    assert is_allowed(current, to, event) is listed
    if listed:
        check_transition(current, to, event)
    else:
        with pytest.raises(TransitionRefused) as refused:
            check_transition(current, to, event)
        assert refused.value.code == "transition_refused"
        assert refused.value.http_status == 409
        assert refused.value.params == {
            "current": current.value if current else "none", "to": to.value, "event": event.value,
        }


def test_nothing_leaves_the_lifecycle_and_an_expired_trial_is_not_a_trial_again():
    assert not any(to is None for _, to in TRANSITIONS)
    assert not is_allowed(E, T, Event.TRIAL_STARTED)
    assert not is_allowed(A, T, Event.TRIAL_STARTED)


def test_a_refusal_says_what_was_asked_and_what_to_do():
    with pytest.raises(TransitionRefused, match=r"from expired to past_due by payment_failed.*Reload"):
        check_transition(E, P, Event.PAYMENT_FAILED)
    with pytest.raises(TransitionRefused, match="from none to expired"):
        check_transition(None, E, Event.EXPIRED)


def test_retries_are_1_3_and_7_days_after_the_first_failure_then_none():
    assert RETRY_DAYS == (1, 3, 7)
    assert [next_attempt_at(first_failed_at=FIRST_FAILURE, attempts_made=n) for n in (1, 2, 3, 4)] \
        == [utc(2026, 4, 12, 0, 0, 7), utc(2026, 4, 14, 0, 0, 7), utc(2026, 4, 18, 0, 0, 7), None]
    assert next_attempt_at(first_failed_at=FIRST_FAILURE, attempts_made=9) is None


@given(st.integers(min_value=1, max_value=len(RETRY_DAYS)))
def test_a_planned_retry_counts_as_the_attempt_that_planned_it_plus_one(attempts):
    planned = next_attempt_at(first_failed_at=FIRST_FAILURE, attempts_made=attempts)
    assert planned is not None
    assert attempts_made_by(first_failed_at=FIRST_FAILURE, retry_at=planned) == attempts + 1


def test_an_instant_off_the_schedule_is_no_retry():
    with pytest.raises(ValueError, match="not a retry planned"):
        attempts_made_by(first_failed_at=FIRST_FAILURE, retry_at=FIRST_FAILURE + timedelta(days=2))
    with pytest.raises(InvalidInstant):
        attempts_made_by(first_failed_at=FIRST_FAILURE, retry_at=FIRST_FAILURE.replace(tzinfo=None))


def test_attempts_left_counts_down_to_zero():
    assert [attempts_left(n) for n in (1, 2, 3, 4, 5)] == [3, 2, 1, 0, 0]


@given(st.integers(min_value=1, max_value=len(RETRY_DAYS) - 1))
def test_attempts_come_later_and_later(attempts):
    earlier = next_attempt_at(first_failed_at=FIRST_FAILURE, attempts_made=attempts)
    later = next_attempt_at(first_failed_at=FIRST_FAILURE, attempts_made=attempts + 1)
    assert earlier is not None and later is not None and FIRST_FAILURE < earlier < later
    assert (later - FIRST_FAILURE) % timedelta(days=1) == timedelta(0)


def test_the_schedule_refuses_nonsense():
    with pytest.raises(ValueError, match="at least 1"):
        next_attempt_at(first_failed_at=FIRST_FAILURE, attempts_made=0)
    with pytest.raises(InvalidInstant):
        next_attempt_at(first_failed_at=FIRST_FAILURE.replace(tzinfo=None), attempts_made=1)
