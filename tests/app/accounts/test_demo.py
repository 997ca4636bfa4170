import pytest
from django.contrib.auth import authenticate

from prorata.accounts.demo import DEMO_PASSWORD, demo_load_people
from prorata.accounts.models import Account, AuditEntry, Membership, User
from prorata.accounts.permissions import Action, can

pytestmark = pytest.mark.django_db


def test_demo_people_and_accounts_match_the_issue(clock):
    demo_load_people()
    demo_load_people()  # idempotent
    assert User.objects.count() == 8
    assert sorted(Account.objects.values_list("name", "country", "currency", "billing_mode")) == [
        ("Acme Corp", "US", "USD", "self_service"),
        ("Bistro Numérique", "FR", "EUR", "self_service"),
        ("Globex", "DE", "EUR", "corporate"),
    ]
    globex = Account.objects.get(name="Globex")
    assert globex.advisor.email == "advisor@prorata.example"
    alice = authenticate(username="alice@acme.example", password=DEMO_PASSWORD)
    acme = Account.objects.get(name="Acme Corp")
    assert can(alice, Action.MANAGE_BILLING, acme)
    carol = User.objects.get(email="carol@acme.example")
    assert not can(carol, Action.VIEW_BILLING, acme) and can(carol, Action.HOST_WEBINARS, acme)
    assert User.objects.get(email="jeanne@bistro.example").language == "fr"
    assert Membership.objects.count() == 5
    assert AuditEntry.objects.filter(action="membership.roles").count() == 5
