"""Permission- and money-relevant edits made in the console are audited like service calls."""

import pytest
from django.contrib.auth.models import Group

from prorata.accounts.models import AuditEntry, Membership, User
from prorata.accounts.services import account_create, membership_set_roles
from tests.app.console_auth import console_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(client, clock):
    user = User.objects.create_superuser("root@prorata.example", "pw")
    console_login(client, user)
    return user


def test_a_role_change_in_the_console_is_audited_with_before_and_after(client, root):
    account = account_create(name="Acme", country="US")
    alice = User.objects.create_user("alice@acme.example", "pw")
    member = membership_set_roles(actor=None, account=account, user=alice, billing_contact=True)
    data = {
        "name": "Acme", "country": "US", "billing_address": "", "vat_number": "",
        "billing_mode": "self_service", "advisor": "", "payment_terms_days": "30",
        "language": "en",
        "memberships-TOTAL_FORMS": "1", "memberships-INITIAL_FORMS": "1",
        "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000",
        "memberships-0-id": str(member.pk), "memberships-0-account": str(account.pk),
        "memberships-0-user": str(alice.pk), "memberships-0-is_admin": "on",
    }
    response = client.post(f"/console/accounts/account/{account.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Membership.objects.get(pk=member.pk).roles == ["admin"]
    entry = AuditEntry.objects.filter(action="membership.roles").latest("id")
    assert entry.before == {"roles": ["billing_contact"]}
    assert entry.after == {"user": "alice@acme.example", "roles": ["admin"]}
    assert (entry.actor_email, entry.account, entry.ip) == ("root@prorata.example", account,
                                                           "127.0.0.1")
    # the account itself did not change, so no account.change entry
    assert not AuditEntry.objects.filter(action="account.change").exists()


def test_an_advisor_change_is_audited(client, root):
    advisor = User.objects.create_user("advisor@prorata.example", "pw", is_staff=True)
    account = account_create(name="Globex", country="DE")
    data = {
        "name": "Globex", "country": "DE", "billing_address": "", "vat_number": "",
        "billing_mode": "corporate", "advisor": str(advisor.pk), "payment_terms_days": "45",
        "language": "en",
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000",
    }
    response = client.post(f"/console/accounts/account/{account.pk}/change/", data)
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="account.change")
    assert entry.before["billing_mode"] == "self_service" and entry.before["advisor_id"] is None
    assert entry.after["billing_mode"] == "corporate" and entry.after["advisor_id"] == advisor.pk
    assert entry.after["payment_terms_days"] == 45


def test_a_staff_role_change_is_audited(client, root):
    agent = User.objects.create_user("agent@prorata.example", "pw", is_staff=True)
    group = Group.objects.get(name="support_agent")
    data = {
        "email": agent.email, "first_name": "", "last_name": "", "language": "",
        "is_active": "on", "is_staff": "on", "groups": [str(group.pk)],
        "last_login_0": "", "last_login_1": "", "date_joined_0": "2026-03-11",
        "date_joined_1": "00:00:00",
    }
    response = client.post(f"/console/accounts/user/{agent.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    entry = AuditEntry.objects.get(action="user.staff_roles")
    assert entry.before["groups"] == [] and entry.after["groups"] == ["support_agent"]
    assert entry.object_id == str(agent.pk)


def test_no_one_may_add_change_or_delete_audit_entries_in_the_console(client, root):
    AuditEntry.objects.create(at=root.date_joined, action="x")
    entry = AuditEntry.objects.get()
    assert client.get("/console/accounts/auditentry/").status_code == 200
    assert client.get("/console/accounts/auditentry/add/").status_code == 403
    assert client.post(f"/console/accounts/auditentry/{entry.pk}/delete/").status_code == 403
    page = client.get(f"/console/accounts/auditentry/{entry.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content  # view only
    assert client.post(f"/console/accounts/auditentry/{entry.pk}/change/",
                       {"action": "rewritten"}).status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk, action="x").exists()
