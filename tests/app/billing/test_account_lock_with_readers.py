"""The account locked with who hears of an order (``billing.queries.account_lock_with_readers``:
one statement on PostgreSQL) against the ORM form it replaces (the lock, the webhook endpoints,
the billing contacts): the same account, endpoints and readers."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from prorata.accounts.models import Membership, User
from prorata.billing.queries import account_lock_with_readers, account_lock_with_readers_orm
from prorata.billing.services import billing_contacts, lock_account_for_order
from prorata.webhooks.models import WebhookEndpoint
from prorata_core.periods import utc

pytestmark = pytest.mark.django_db


def endpoint(types, *, active=True):
    return WebhookEndpoint.objects.create(url="https://hooks.example/x", event_types=types,
                                          secret="s" * 40, is_active=active,
                                          created_at=utc(2026, 1, 1))


@pytest.mark.parametrize("listening", [False, True], ids=["nobody listens", "endpoints"])
def test_both_forms_read_the_same_account_endpoints_and_contacts(acme, listening):
    account, _alice = acme
    if listening:
        first = endpoint(["invoice.created", "subscription.updated"])
        second = endpoint(["invoice.created"])
        endpoint(["invoice.paid"], active=False)
        bob = User.objects.create_user(email="bob@acme.example", password="x" * 12,
                                       first_name="Bob", language="fr")
        gone = User.objects.create_user(email="gone@acme.example", password="x" * 12,
                                        is_active=False)
        Membership.objects.create(account=account, user=bob, is_billing_contact=True)
        Membership.objects.create(account=account, user=gone, is_billing_contact=True)
    with transaction.atomic():
        with CaptureQueriesContext(connection) as captured:
            sql = account_lock_with_readers(account.pk)
        orm = account_lock_with_readers_orm(account.pk)
    assert len(captured.captured_queries) == (1 if connection.vendor == "postgresql" else 3)
    assert sql[0].__dict__.keys() - {"_state"} == orm[0].__dict__.keys() - {"_state"}
    assert {k: v for k, v in sql[0].__dict__.items() if k != "_state"} == {
        k: v for k, v in orm[0].__dict__.items() if k != "_state"}
    assert sql[1:] == orm[1:]
    if listening:
        assert sql[1] == {"invoice.created": [first.pk, second.pk],
                          "subscription.updated": [first.pk]}
        assert [row[1] for row in sql[2]] == [
            "alice@acme.example", "bob@acme.example", "gone@acme.example"]
    with transaction.atomic():
        opened = lock_account_for_order(account.pk)
    # the readers are those of every other billing e-mail (the inactive user left out)
    assert opened.recipients == billing_contacts([account.pk])[account.pk]
    assert opened.account.pk == account.pk and opened.credit is None


def test_an_unknown_account_is_not_found():
    with pytest.raises(Exception, match="does not exist"), transaction.atomic():
        account_lock_with_readers(10**9)
