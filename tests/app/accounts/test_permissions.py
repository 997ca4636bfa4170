"""The permission module: who may do what on which account (DESIGN §5)."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import Http404

from prorata.accounts.models import BillingMode, User
from prorata.accounts.permissions import Action, account_for, accounts_of, can
from prorata.accounts.services import account_create, membership_set_roles

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(clock):
    advisor = User.objects.create_user("advisor@x.example", "pw", is_staff=True)
    advisor.groups.add(Group.objects.get(name="corporate_advisor"))
    other_advisor = User.objects.create_user("other-advisor@x.example", "pw", is_staff=True)
    other_advisor.groups.add(Group.objects.get(name="corporate_advisor"))
    support = User.objects.create_user("support@x.example", "pw", is_staff=True)
    support.groups.add(Group.objects.get(name="support_agent"))
    operator = User.objects.create_user("ops@x.example", "pw", is_staff=True)
    operator.groups.add(Group.objects.get(name="operator"))
    a = account_create(name="A", country="US")
    b = account_create(name="B", country="FR")
    corp = account_create(name="Corp", country="DE", billing_mode=BillingMode.CORPORATE,
                          advisor=advisor)
    people = {}
    for email, account, roles in [
        ("billing@a.example", a, {"billing_contact": True}),
        ("admin@a.example", a, {"admin": True}),
        ("organizer@a.example", a, {"organizer": True}),
        ("plain@a.example", a, {}),
        ("billing@b.example", b, {"billing_contact": True}),
    ]:
        people[email] = User.objects.create_user(email, "pw")
        membership_set_roles(actor=None, account=account, user=people[email], **roles)
    people |= {"advisor": advisor, "other_advisor": other_advisor, "support": support,
               "operator": operator}
    return people, a, b, corp


EXPECTED_ON_A = {
    #                    view   view_b  manage_b members licenses host
    "billing@a.example": (True, True, True, False, True, False),
    "admin@a.example": (True, False, False, True, True, False),
    "organizer@a.example": (True, False, False, False, False, True),
    "plain@a.example": (True, False, False, False, False, False),
    "billing@b.example": (False, False, False, False, False, False),
    "support": (True, True, False, False, False, False),
    "advisor": (False, False, False, False, False, False),
    "operator": (False, False, False, False, False, False),
}
ACTIONS = [Action.VIEW_ACCOUNT, Action.VIEW_BILLING, Action.MANAGE_BILLING, Action.MANAGE_MEMBERS,
           Action.MANAGE_LICENSES, Action.HOST_WEBINARS]


@pytest.mark.parametrize("who", EXPECTED_ON_A)
def test_role_matrix_on_a_self_service_account(world, who):
    people, a, _, _ = world
    assert tuple(can(people[who], action, a) for action in ACTIONS) == EXPECTED_ON_A[who]


def test_only_the_accounts_own_advisor_manages_a_corporate_account(world):
    people, _, _, corp = world
    assert can(people["advisor"], Action.MANAGE_BILLING, corp)
    assert not can(people["advisor"], Action.MANAGE_MEMBERS, corp)
    assert not can(people["other_advisor"], Action.VIEW_ACCOUNT, corp)


def test_a_stranger_gets_404_and_a_member_without_the_role_gets_403(world):
    people, a, _b, _ = world
    with pytest.raises(Http404):
        account_for(people["billing@b.example"], a.pk, Action.VIEW_BILLING)
    with pytest.raises(Http404):
        account_for(people["billing@a.example"], 999_999, Action.VIEW_ACCOUNT)
    with pytest.raises(Http404):
        account_for(people["billing@a.example"], "not-a-number", Action.VIEW_ACCOUNT)
    with pytest.raises(PermissionDenied):
        account_for(people["plain@a.example"], a.pk, Action.VIEW_BILLING)
    assert account_for(people["billing@a.example"], str(a.pk), Action.MANAGE_BILLING) == a


def test_inactive_users_and_superusers(world):
    people, a, _, _ = world
    people["billing@a.example"].is_active = False
    assert not can(people["billing@a.example"], Action.VIEW_ACCOUNT, a)
    root = User.objects.create_superuser("root@x.example", "pw")
    assert all(can(root, action, a) for action in ACTIONS)


def test_accounts_of_lists_only_memberships(world):
    from django.contrib.auth.models import AnonymousUser

    people, a, _b, _ = world
    assert list(accounts_of(people["billing@a.example"])) == [a]
    assert list(accounts_of(AnonymousUser())) == []
    assert not can(AnonymousUser(), Action.VIEW_ACCOUNT, a)
