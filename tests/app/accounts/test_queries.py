"""The accounts app's hand-written queries give what their ORM references give, in one query."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from prorata.accounts.models import User
from prorata.accounts.queries import (
    account_with_membership,
    account_with_membership_orm,
    unexpired_session,
    unexpired_session_orm,
)
from prorata.accounts.services import account_create, membership_set_roles
from tests.app.parity import values_of

pytestmark = pytest.mark.django_db


def _shape(found):
    if found is None:
        return None
    account, member = found
    return values_of(account), values_of(member)


@pytest.fixture
def people(clock):
    acme = account_create(name="Acme", country="US", billing_address="1 Road", vat_number="")
    bistro = account_create(name="Bistro", country="FR", vat_number="FR40303265045")
    alice = User.objects.create_user("alice@acme.example", "pw")
    membership_set_roles(actor=None, account=acme, user=alice, billing_contact=True, admin=True)
    bea = User.objects.create_user("bea@bistro.example", "pw")
    membership_set_roles(actor=None, account=bistro, user=bea, organizer=True)
    return acme, bistro, alice, bea


@pytest.mark.parametrize("who, which", [
    ("alice", "acme"), ("alice", "bistro"), ("bea", "bistro"), (None, "acme"), ("alice", "none"),
])
def test_the_account_with_the_caller_s_membership_is_the_orm_s(people, who, which,
                                                                django_assert_num_queries):
    acme, bistro, alice, bea = people
    user_id = {"alice": alice.pk, "bea": bea.pk, None: None}[who]
    account_id = {"acme": acme.pk, "bistro": bistro.pk, "none": bistro.pk + 1000}[which]
    with django_assert_num_queries(1):
        found = account_with_membership(user_id=user_id, account_id=account_id)
    assert _shape(found) == _shape(account_with_membership_orm(user_id=user_id,
                                                               account_id=account_id))
    if which == "none":
        assert found is None
    elif (who, which) in {("alice", "acme"), ("bea", "bistro")}:
        assert found[1] is not None and found[1].user_id == user_id
    else:
        assert found[1] is None


@pytest.mark.parametrize("case", ["live", "expired", "unknown"])
def test_the_session_is_the_one_django_reads(clock, case, django_assert_num_queries):
    instant = timezone.now()
    Session.objects.create(session_key="live" * 8, session_data="x:1",
                           expire_date=instant + timedelta(days=1))
    Session.objects.create(session_key="expired" * 4, session_data="x:2",
                           expire_date=instant - timedelta(seconds=1))
    key = {"live": "live" * 8, "expired": "expired" * 4, "unknown": "nothing" * 4}[case]
    with django_assert_num_queries(1):
        found = unexpired_session(model=Session, session_key=key, expires_after=instant)
    assert values_of(found) == values_of(
        unexpired_session_orm(model=Session, session_key=key, expires_after=instant))
    assert (found is not None) == (case == "live")
