import pytest
from django.db import IntegrityError, transaction

from prorata.accounts.models import Account, AppendOnlyError, AuditEntry, BillingMode, User
from prorata.accounts.services import account_create, audit_record, membership_set_roles
from prorata_core.errors import InvalidVatNumber, ValidationError

pytestmark = pytest.mark.django_db


def test_users_sign_in_by_email_case_insensitively_with_argon2(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
    user = User.objects.create_user("Alice@Acme.Example", "s3cret-pass")
    assert user.email == "alice@acme.example"
    assert user.password.startswith("argon2$")
    assert User.objects.get_by_natural_key("ALICE@acme.example") == user
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="ALICE@ACME.EXAMPLE")
    with pytest.raises(ValueError):
        User.objects.create_user("", "pw")


def test_account_create_normalises_the_vat_number_and_is_audited(clock):
    account = account_create(name=" Bistro ", country="fr", vat_number="fr 40 303 265 045")
    assert (account.name, account.country, account.vat_number) == ("Bistro", "FR", "FR40303265045")
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.account, entry.at) == ("account.create", account, clock.now())


@pytest.mark.parametrize(
    ("fields", "error"),
    [({"country": "France"}, ValidationError),
     ({"country": "FR", "vat_number": "FR123"}, InvalidVatNumber),
     ({"country": "DE", "billing_mode": BillingMode.CORPORATE}, ValidationError)],
)
def test_bad_account_input_creates_nothing(clock, fields, error):
    with pytest.raises(error) as refused:
        account_create(name="X", **fields)
    assert refused.value.message
    assert Account.objects.count() == 0 and AuditEntry.objects.count() == 0


def test_roles_are_set_audited_and_unchanged_roles_record_nothing(clock):
    account = account_create(name="A", country="US")
    user = User.objects.create_user("u@a.example", "pw")
    member = membership_set_roles(actor=None, account=account, user=user, billing_contact=True)
    assert member.roles == ["billing_contact"]
    membership_set_roles(actor=user, account=account, user=user, billing_contact=True)
    member = membership_set_roles(actor=user, account=account, user=user, admin=True,
                                  organizer=True, ip="127.0.0.1")
    assert member.roles == ["admin", "organizer"]
    entries = list(AuditEntry.objects.filter(action="membership.roles").order_by("id"))
    assert len(entries) == 2
    assert entries[1].before == {"roles": ["billing_contact"]}
    assert entries[1].after == {"user": "u@a.example", "roles": ["admin", "organizer"]}
    assert (entries[1].actor_email, entries[1].ip) == ("u@a.example", "127.0.0.1")


def test_the_audit_log_cannot_be_changed_or_deleted(clock):
    entry = audit_record(actor=None, action="test.action")
    entry.action = "rewritten"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    # and not behind the model's back either
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(action="rewritten")
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()
    assert AuditEntry.objects.get(pk=entry.pk).action == "test.action"


def test_deleting_a_user_keeps_their_audit_entries(clock):
    user = User.objects.create_user("gone@a.example", "pw")
    audit_record(actor=user, action="test.action")
    user.delete()
    assert AuditEntry.objects.get().actor_email == "gone@a.example"
