"""Members (issue 13): invitations by e-mail (one use, expiry on the project clock), joining with
a new password or an existing account, roles (audited), the last billing contact, removal."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client

from prorata.accounts.models import AuditEntry, Membership, User
from prorata.licenses.errors import (
    AlreadyMember,
    InvitationForAnotherAddress,
    InvitationUnusable,
    LastBillingContact,
    NoFreeLicense,
)
from prorata.licenses.models import Invitation, LicenseAssignment
from prorata.licenses.services import (
    invitation_accept,
    license_assign,
    member_invite,
    member_remove,
    member_set_roles,
)
from prorata.notifications.outbox import outbox_deliver
from prorata_core.errors import ValidationError
from tests.app.licenses.support import acme
from tests.app.web.conftest import page_text

pytestmark = pytest.mark.django_db

PASSWORD = "staple purple lantern"


@pytest.fixture
def world(clock, demo_catalog):
    return acme(clock)


def token_of(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[1]


def test_an_invitation_is_e_mailed_with_a_one_use_link_and_audited(world):
    invitation, link = member_invite(actor=world.bob, account=world.account,
                                     email=" Dave@Acme.example ")
    assert invitation.email == "dave@acme.example"
    assert token_of(link).split(".")[1] not in invitation.nonce_hash
    outbox_deliver()
    sent = [m for m in mail.outbox if m.to == ["dave@acme.example"]]
    assert link in sent[0].body and "Acme Corp" in sent[0].subject
    assert AuditEntry.objects.get(action="member.invite").after["email"] == "dave@acme.example"


def test_a_new_person_sets_a_password_joins_as_organizer_with_a_license(world):
    _, link = member_invite(actor=world.bob, account=world.account, email="dave@acme.example",
                            with_license=True)
    client = Client()
    page = client.get(link)
    assert "Set my password and join" in page_text(page)
    response = client.post(link, {"first_name": "Dave", "last_name": "Doe",
                                  "password": PASSWORD})
    assert response.status_code == 302
    dave = User.objects.get(email="dave@acme.example")
    assert dave.check_password(PASSWORD)
    member = Membership.objects.get(user=dave, account=world.account)
    assert member.is_organizer and not member.is_admin
    assert LicenseAssignment.objects.filter(member=member).exists()
    assert client.get(f"/billing/{world.account.pk}/").status_code == 200  # signed in
    again = Client().post(link, {"password": PASSWORD})
    assert again.status_code == 410  # used once


def test_a_weak_password_is_refused_and_nobody_is_created(world):
    _, link = member_invite(actor=world.bob, account=world.account, email="dave@acme.example")
    response = Client().post(link, {"password": "123"})
    assert response.status_code == 422
    assert not User.objects.filter(email="dave@acme.example").exists()


def test_someone_with_an_account_joins_with_it(world):
    erin = User.objects.create_user("erin@example.com", PASSWORD)
    _, link = member_invite(actor=world.alice, account=world.account, email="erin@example.com",
                            admin=True)
    assert "sign in" in page_text(Client().get(link)).lower()
    client = Client()
    client.force_login(erin)
    assert "Join with my account" in page_text(client.get(link))
    assert client.post(link).status_code == 302
    member = Membership.objects.get(user=erin, account=world.account)
    assert member.is_admin and member.is_organizer


def test_the_wrong_address_or_an_existing_member_cannot_use_it(world):
    _, link = member_invite(actor=world.bob, account=world.account, email="dave@acme.example")
    with pytest.raises(InvitationForAnotherAddress):
        invitation_accept(token=token_of(link), user=world.carol)
    with pytest.raises(AlreadyMember):
        member_invite(actor=world.bob, account=world.account, email="CAROL@acme.example")
    with pytest.raises(ValidationError):
        member_invite(actor=world.bob, account=world.account, email="not an address")


def test_the_link_expires_on_the_project_clock(world, clock):
    _, link = member_invite(actor=world.bob, account=world.account, email="dave@acme.example")
    clock.advance(timedelta(days=7))
    with pytest.raises(InvitationUnusable) as refused:
        invitation_accept(token=token_of(link), password=PASSWORD)
    assert refused.value.params["reason"] == "expired"
    assert Client().get(link).status_code == 410


def test_a_forged_or_replaced_link_does_not_work(world):
    invitation, link = member_invite(actor=world.bob, account=world.account,
                                     email="dave@acme.example")
    for token in (f"{invitation.pk}.forged", "garbage", f"{10**30}.x", token_of(link) + "x"):
        with pytest.raises(InvitationUnusable):
            invitation_accept(token=token, password=PASSWORD)
    _, newer = member_invite(actor=world.bob, account=world.account, email="dave@acme.example")
    with pytest.raises(InvitationUnusable):  # the newer invitation replaced it
        invitation_accept(token=token_of(link), password=PASSWORD)
    invitation_accept(token=token_of(newer), password=PASSWORD)


def test_with_a_license_needs_a_free_one_when_sent(world):
    for user in (world.carol, world.bob):
        license_assign(actor=world.alice, account=world.account,
                       subscription_id=world.subscription.pk,
                       member_id=world.membership(user).pk)
    with pytest.raises(NoFreeLicense):
        member_invite(actor=world.bob, account=world.account, email="dave@acme.example",
                      with_license=True)
    assert not Invitation.objects.exists()


def test_role_changes_are_audited_and_the_last_billing_contact_stays(world):
    member_set_roles(actor=world.bob, account=world.account,
                     member_id=world.membership(world.carol).pk, billing_contact=True,
                     admin=False, organizer=True)
    entry = AuditEntry.objects.filter(action="membership.roles").latest("id")
    assert entry.before == {"roles": ["organizer"]}
    assert entry.after["roles"] == ["billing_contact", "organizer"]
    member_set_roles(actor=world.bob, account=world.account,
                     member_id=world.membership(world.alice).pk, billing_contact=False,
                     admin=False, organizer=False)
    with pytest.raises(LastBillingContact):
        member_set_roles(actor=world.bob, account=world.account,
                         member_id=world.membership(world.carol).pk, billing_contact=False,
                         admin=False, organizer=True)
    with pytest.raises(LastBillingContact):
        member_remove(actor=world.bob, account=world.account,
                      member_id=world.membership(world.carol).pk)
    assert world.membership(world.carol).is_billing_contact


def test_removing_a_member_frees_their_license(world):
    license_assign(actor=world.alice, account=world.account,
                   subscription_id=world.subscription.pk,
                   member_id=world.membership(world.carol).pk)
    member_remove(actor=world.bob, account=world.account,
                  member_id=world.membership(world.carol).pk)
    assert not Membership.objects.filter(user=world.carol, account=world.account).exists()
    assert not LicenseAssignment.objects.exists()
    assert AuditEntry.objects.filter(action="license.unassign",
                                     after__reason="member_removed").exists()
    assert AuditEntry.objects.filter(action="membership.remove").exists()


def test_the_members_page_invites_and_shows_refusals(world):
    client = world.client(world.bob)
    url = f"/billing/{world.account.pk}/members/"
    response = client.post(url, {"email": "dave@acme.example"}, follow=True)
    assert "Invitation sent to dave@acme.example." in page_text(response)
    assert "dave@acme.example" in page_text(client.get(url))
    refused = client.post(url, {"email": "carol@acme.example"})
    assert refused.status_code == 422
    assert "carol@acme.example is already a member" in page_text(refused)
    demoted = client.post(f"{url}{world.membership(world.alice).pk}/roles/", {}, follow=True)
    assert "last billing contact" in page_text(demoted)
    assert world.membership(world.alice).is_billing_contact


def test_the_invitation_page_in_french(world):
    world.account.language = "fr"
    world.account.save()
    _, link = member_invite(actor=world.bob, account=world.account, email="dave@acme.example")
    text = page_text(Client().get(link, HTTP_ACCEPT_LANGUAGE="fr"))
    assert "Rejoindre Acme Corp" in text
    outbox_deliver()
    sent = [m for m in mail.outbox if m.to == ["dave@acme.example"]]
    assert "Vous êtes invité" in sent[0].subject
    assert re.search(r"/invitations/\d+\.", sent[0].body)
