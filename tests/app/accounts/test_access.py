"""The request-scoped cache of authorization rows (prorata.accounts.access): read once per
request, never seen by another request, and never stale after a membership change."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from prorata.accounts.access import RequestAccessMiddleware, access_scope, current_access
from prorata.accounts.models import User
from prorata.accounts.permissions import Action, account_for, can, membership, staff_roles
from prorata.accounts.services import account_create, membership_set_roles

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(clock):
    account = account_create(name="Acme", country="US")
    pat = User.objects.create_user("pat@acme.example", "pw")
    membership_set_roles(actor=None, account=account, user=pat)
    return account, pat


def test_in_a_request_the_membership_is_read_once(acme, django_assert_num_queries):
    account, pat = acme
    with access_scope(), django_assert_num_queries(1):
        account_for(pat, account.pk, Action.VIEW_ACCOUNT)
        assert not can(pat, Action.MANAGE_BILLING, account)
        assert membership(pat, account) is not None


def test_outside_a_request_nothing_is_kept(acme, django_assert_num_queries):
    account, pat = acme
    with django_assert_num_queries(2):
        membership(pat, account)
        membership(pat, account)
    assert current_access() is None


def test_a_membership_change_is_seen_by_the_rest_of_the_request(acme):
    account, pat = acme
    with access_scope():
        assert not can(pat, Action.MANAGE_BILLING, account)
        membership_set_roles(actor=None, account=account, user=pat, billing_contact=True)
        assert can(pat, Action.MANAGE_BILLING, account)
        assert account_for(pat, account.pk, Action.MANAGE_BILLING) == account


def test_each_user_has_their_own_answers_in_one_request(acme):
    account, pat = acme
    stranger = User.objects.create_user("stranger@x.example", "pw")
    with access_scope() as access:
        assert membership(pat, account) is not None
        assert membership(stranger, account) is None
        assert set(access.memberships) == {(pat.pk, account.pk), (stranger.pk, account.pk)}


def test_staff_roles_are_read_once_per_request(clock, django_assert_num_queries):
    from django.contrib.auth.models import Group

    agent = User.objects.create_user("agent@x.example", "pw", is_staff=True)
    agent.groups.add(Group.objects.get(name="support_agent"))
    with access_scope(), django_assert_num_queries(1):
        assert staff_roles(agent) == {"support_agent"}
        assert staff_roles(agent) == {"support_agent"}
    agent.groups.clear()
    with access_scope():
        assert staff_roles(agent) == frozenset()


def test_the_middleware_gives_each_request_its_own_and_drops_it_after():
    seen = []

    def view(request):
        seen.append((request.access, current_access()))
        return HttpResponse("ok")

    middleware = RequestAccessMiddleware(view)
    middleware(RequestFactory().get("/"))
    middleware(RequestFactory().get("/"))
    (first, first_current), (second, second_current) = seen
    assert first is first_current and second is second_current and first is not second
    assert current_access() is None
