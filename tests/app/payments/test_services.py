"""Saved payment methods: one default per account, another account's card is not found, audited,
and no card number anywhere in the database."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction

from prorata.accounts.models import AuditEntry, User
from prorata.accounts.services import account_create
from prorata.common.clock import now
from prorata.payments.errors import CardRejected, CardTokenInvalid, PaymentMethodNotFound
from prorata.payments.gateway import get_gateway
from prorata.payments.models import PaymentMethod
from prorata.payments.sandbox import CardDetails, card_token
from prorata.payments.services import (
    default_payment_method,
    payment_method_add,
    payment_method_remove,
    payment_method_set_default,
    payment_methods_for,
)
from prorata_core.money import Money

pytestmark = pytest.mark.django_db

VISA = CardDetails(number="4242 4242 4242 4242", exp_month=12, exp_year=2030, cvc="123")
MASTERCARD = CardDetails(number="5555-5555-5555-4444", exp_month=1, exp_year=2028, cvc="321")
DECLINING = CardDetails(number="4000 0000 0000 0002", exp_month=6, exp_year=2029, cvc="456")


def tok(card: CardDetails) -> str:
    """The single-use token the sandbox's card form gets for ``card``."""
    return card_token(card, now())


@pytest.fixture
def acme(clock):
    return account_create(name="Acme", country="US")


@pytest.fixture
def bistro(clock):
    return account_create(name="Bistro", country="FR")


@pytest.fixture
def alice(db):
    return User.objects.create_user("alice@acme.example", "pw")


def test_the_first_card_is_the_default_even_when_not_asked(acme, alice, clock):
    method = payment_method_add(account=acme, token=tok(VISA), make_default=False, actor=alice)
    assert (method.brand, method.last4, method.expiry, method.is_default) == (
        "Visa", "4242", "12/2030", True
    )
    assert method.created_at == clock.now()
    assert method.token.startswith("pm_sandbox_")  # the reusable method, not the form's token
    assert str(method) == "Visa •••• 4242 (12/2030)"
    entry = AuditEntry.objects.get(action="payment_method.add")
    assert (entry.account, entry.actor, entry.object_id) == (acme, alice, str(method.pk))
    assert entry.after == {"id": method.pk, "brand": "Visa", "last4": "4242",
                           "expiry": "12/2030", "is_default": True}


def test_a_new_default_replaces_the_old_one_and_the_default_is_listed_first(acme):
    visa = payment_method_add(account=acme, token=tok(VISA))
    kept = payment_method_add(account=acme, token=tok(DECLINING), make_default=False)
    master = payment_method_add(account=acme, token=tok(MASTERCARD))
    assert [m.pk for m in payment_methods_for(account=acme)] == [master.pk, kept.pk, visa.pk]
    assert default_payment_method(account=acme) == master
    assert PaymentMethod.objects.filter(account=acme, is_default=True).count() == 1

    payment_method_set_default(account=acme, payment_method_id=visa.pk)
    assert [m.pk for m in payment_methods_for(account=acme)] == [visa.pk, master.pk, kept.pk]
    entry = AuditEntry.objects.get(action="payment_method.set_default")
    assert (entry.before["default"]["last4"], entry.after["default"]["last4"]) == ("4444", "4242")
    # making the default the default again changes and records nothing
    payment_method_set_default(account=acme, payment_method_id=visa.pk)
    assert AuditEntry.objects.filter(action="payment_method.set_default").count() == 1


def test_removing_the_default_promotes_the_newest_remaining_card(acme, alice, clock):
    visa = payment_method_add(account=acme, token=tok(VISA))
    master = payment_method_add(account=acme, token=tok(MASTERCARD), make_default=False)
    payment_method_remove(account=acme, payment_method_id=visa.pk, actor=alice)
    visa.refresh_from_db()
    assert (visa.removed_at, visa.is_default) == (clock.now(), False)
    assert payment_methods_for(account=acme) == [master]
    assert default_payment_method(account=acme) == master
    entry = AuditEntry.objects.get(action="payment_method.remove")
    assert entry.before["last4"] == "4242" and entry.before["is_default"] is True
    assert entry.after == {"default": {"id": master.pk, "brand": "Mastercard", "last4": "4444",
                                       "expiry": "01/2028", "is_default": True}}
    payment_method_remove(account=acme, payment_method_id=master.pk)
    assert payment_methods_for(account=acme) == [] and default_payment_method(account=acme) is None
    with pytest.raises(PaymentMethodNotFound):
        payment_method_remove(account=acme, payment_method_id=master.pk)


def test_another_accounts_card_is_not_found_and_left_untouched(acme, bistro):
    theirs = payment_method_add(account=bistro, token=tok(VISA))
    payment_method_add(account=acme, token=tok(MASTERCARD))
    audited = AuditEntry.objects.count()
    for action in (payment_method_set_default, payment_method_remove):
        with pytest.raises(PaymentMethodNotFound) as refused:
            action(account=acme, payment_method_id=theirs.pk)
        assert (refused.value.code, refused.value.http_status) == ("payment_method_not_found", 404)
        assert refused.value.message == (
            f"There is no saved card {theirs.pk} on this account; choose one of the account's "
            "saved cards, or add a new one."
        )
    for missing in (999_999, "not-a-number"):
        with pytest.raises(PaymentMethodNotFound):
            payment_method_set_default(account=acme, payment_method_id=missing)
    theirs.refresh_from_db()
    assert (theirs.is_default, theirs.removed_at) == (True, None)
    assert AuditEntry.objects.count() == audited


def test_a_refused_card_saves_and_records_nothing(acme):
    expired = CardDetails(number="4242424242424242", exp_month=1, exp_year=2026, cvc="123")
    with pytest.raises(CardRejected):
        tok(expired)  # refused by the gateway's form: no token to send
    assert PaymentMethod.objects.count() == 0
    assert not AuditEntry.objects.filter(action__startswith="payment_method").exists()


def test_the_database_refuses_two_defaults_for_one_account(acme, clock):
    payment_method_add(account=acme, token=tok(VISA))
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentMethod.objects.create(account=acme, token="t", brand="Visa", last4="1111",
                                     exp_month=1, exp_year=2030, is_default=True,
                                     created_at=clock.now())


CVC = "987"


def _words_except_ids(value, key=""):
    """Every word of a row (JSON included) but its ids, which may be any number: 987 too."""
    if key == "id" or key.endswith("_id"):
        return []
    if isinstance(value, dict):
        return [w for k, v in value.items() for w in _words_except_ids(v, str(k))]
    if isinstance(value, (list, tuple)):
        return [w for v in value for w in _words_except_ids(v)]
    return str(value).split()


def test_no_card_number_or_security_code_is_stored_anywhere(acme, alice):
    numbers = ["4242424242424242", "5555555555554444", "4000000000000002", "4000000000009995",
               "4000000000000119"]
    for index, number in enumerate(numbers):
        details = CardDetails(number=number, exp_month=12, exp_year=2030, cvc=CVC)
        method = payment_method_add(account=acme, token=tok(details), actor=alice)
        get_gateway().charge(token=method.token, amount=Money(100, "EUR"),
                             idempotency_key=f"k-{index}", description=f"card {method.last4}")
    found = []
    tables = set(connection.introspection.table_names())
    for model in (m for m in apps.get_models() if m._meta.db_table in tables):
        for row in model.objects.values():
            text = " ".join(str(value) for value in row.values())
            found += [(model.__name__, n) for n in numbers if n[:12] in text.replace(" ", "")]
            if CVC in _words_except_ids(row):
                found.append((model.__name__, "cvc"))
    assert found == []


def test_a_bad_a_used_or_an_expired_token_is_refused_and_changes_nothing(acme, alice, clock):
    from datetime import timedelta

    token = tok(VISA)
    payment_method_add(account=acme, token=token, actor=alice)
    before = (PaymentMethod.objects.count(), AuditEntry.objects.count())
    stale = tok(MASTERCARD)
    clock.advance(timedelta(minutes=61))
    for bad, reason in ((token, "used"), ("tok_sandbox_nope", "unknown"), ("", "unknown"),
                        (stale, "expired")):
        with pytest.raises(CardTokenInvalid) as refused:
            payment_method_add(account=acme, token=bad, actor=alice)
        assert (refused.value.code, refused.value.params["reason"]) == (
            "card_token_invalid", reason)
    assert (PaymentMethod.objects.count(), AuditEntry.objects.count()) == before
