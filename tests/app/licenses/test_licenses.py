"""The license pool (DESIGN §4, S22): assign, unassign, refusals, audit and e-mails; the page."""

from __future__ import annotations

import pytest
from django.core import mail

from prorata.accounts.models import AuditEntry, Membership, User
from prorata.accounts.services import account_create, membership_set_roles
from prorata.licenses.errors import AlreadyLicensed, NoFreeLicense, NotAMember, NotLicensed
from prorata.licenses.models import LicenseAssignment
from prorata.licenses.selectors import license_pools, unassigned_licenses
from prorata.licenses.services import license_assign, license_unassign
from prorata.notifications.models import OutboxMessage
from prorata.notifications.outbox import outbox_deliver
from tests.app.licenses.support import acme
from tests.app.web.billing_support import member
from tests.app.web.conftest import page_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(clock, demo_catalog):
    return acme(clock)


def assign(world, user, actor=None):
    return license_assign(actor=actor or world.bob, account=world.account,
                          subscription_id=world.subscription.pk,
                          member_id=world.membership(user).pk)


def test_assigning_a_license_records_it_audits_it_and_tells_the_member(world):
    assign(world, world.carol)
    pool, = license_pools(account=world.account)
    assert (pool.used, pool.bought, pool.free) == (1, 2, 1)
    assert [a.member.user.email for a in pool.holders] == ["carol@acme.example"]
    entry = AuditEntry.objects.get(action="license.assign")
    assert entry.actor_email == "bob@acme.example"
    assert entry.after["user"] == "carol@acme.example"
    message = OutboxMessage.objects.get(template="license_assigned")
    assert message.to == "carol@acme.example"
    outbox_deliver()
    sent = [m for m in mail.outbox if m.to == ["carol@acme.example"]]
    assert "license" in sent[0].subject and "Acme Corp" in sent[0].body


def test_a_member_without_the_organizer_role_becomes_one_with_a_license(world):
    assign(world, world.bob, actor=world.alice)
    assert world.membership(world.bob).is_organizer
    assert AuditEntry.objects.filter(action="membership.roles",
                                     after__user="bob@acme.example").exists()


def test_past_the_pool_is_refused_and_nothing_is_written(world):
    assign(world, world.carol)
    assign(world, world.bob)
    dave = member(world.world, "dave@acme.example", organizer=True)
    before = (LicenseAssignment.objects.count(), AuditEntry.objects.count(),
              OutboxMessage.objects.count())
    with pytest.raises(NoFreeLicense) as refused:
        assign(world, dave)
    assert refused.value.params == {"bought": 2, "used": 2}
    assert (LicenseAssignment.objects.count(), AuditEntry.objects.count(),
            OutboxMessage.objects.count()) == before


def test_the_same_member_twice_and_strangers_are_refused(world):
    assign(world, world.carol)
    with pytest.raises(AlreadyLicensed):
        assign(world, world.carol)
    other = account_create(name="Other", country="US")
    stranger = User.objects.create_user("x@other.example", "pw")
    membership_set_roles(actor=None, account=other, user=stranger, organizer=True)
    with pytest.raises(NotAMember):
        license_assign(actor=world.bob, account=world.account,
                       subscription_id=world.subscription.pk,
                       member_id=Membership.objects.get(user=stranger).pk)
    with pytest.raises(NotAMember):
        license_assign(actor=world.bob, account=world.account,
                       subscription_id=world.subscription.pk, member_id="not a number")


def test_unassigning_frees_the_license_audits_and_tells_the_member(world):
    assign(world, world.carol)
    license_unassign(actor=world.bob, account=world.account,
                     subscription_id=world.subscription.pk,
                     member_id=world.membership(world.carol).pk)
    assert unassigned_licenses(account=world.account) == 2
    assert AuditEntry.objects.get(action="license.unassign").before["user"] == "carol@acme.example"
    assert OutboxMessage.objects.get(template="license_unassigned").to == "carol@acme.example"
    with pytest.raises(NotLicensed):
        license_unassign(actor=world.bob, account=world.account,
                         subscription_id=world.subscription.pk,
                         member_id=world.membership(world.carol).pk)


def test_the_page_shows_used_of_bought_and_assigns(world):
    client = world.client(world.bob)
    url = f"/billing/{world.account.pk}/licenses/"
    text = page_text(client.get(url))
    assert "0 of 2 licenses assigned" in text
    response = client.post(url, {"action": "assign", "subscription": world.subscription.pk,
                                 "member": world.membership(world.carol).pk}, follow=True)
    assert "1 of 2 licenses assigned" in page_text(response)
    assert LicenseAssignment.objects.filter(member__user=world.carol).exists()


def test_the_page_refusal_offers_add_licenses_prefilled(world):
    assign(world, world.carol)
    assign(world, world.bob)
    dave = member(world.world, "dave@acme.example", organizer=True)
    response = world.client(world.alice).post(
        f"/billing/{world.account.pk}/licenses/",
        {"action": "assign", "subscription": world.subscription.pk,
         "member": world.membership(dave).pk})
    assert response.status_code == 409
    text = page_text(response)
    assert "All 2 licenses are assigned" in text and "Add licenses" in text
    modify = f"/billing/{world.account.pk}/subscriptions/webinar/modify/?quantity=3"
    assert modify in response.content.decode()
    assert 'value="3"' in world.client(world.alice).get(modify).content.decode()


def test_an_admin_without_billing_is_told_to_ask_the_billing_contact(world):
    assign(world, world.carol)
    assign(world, world.alice)
    dave = member(world.world, "dave@acme.example", organizer=True)
    response = world.client(world.bob).post(
        f"/billing/{world.account.pk}/licenses/",
        {"action": "assign", "subscription": world.subscription.pk,
         "member": world.membership(dave).pk})
    assert "Ask your billing contact to add licenses." in page_text(response)


def test_bad_input_on_the_page_is_a_clear_message_not_a_500(world):
    client = world.client(world.bob)
    url = f"/billing/{world.account.pk}/licenses/"
    assert client.post(url, {"action": "steal"}).status_code == 422
    response = client.post(url, {"action": "assign", "subscription": "x", "member": "y"})
    assert response.status_code == 422
    assert "no such subscription" in page_text(response).lower() or "no subscription" in \
        page_text(response).lower()
    assert LicenseAssignment.objects.count() == 0


def test_the_page_in_french_says_licences(world):
    world.bob.language = "fr"
    world.bob.save()
    text = page_text(world.client(world.bob).get(f"/billing/{world.account.pk}/licenses/",
                                                 HTTP_ACCEPT_LANGUAGE="fr"))
    assert "Licences" in text and "0 licence attribuée sur 2" in text
