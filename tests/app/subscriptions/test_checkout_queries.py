"""The checkout's first transaction in fewer statements (issue 12): its reads under the account
lock (``subscriptions.queries.checkout_reads``) and the order placed with its payment and the
subscriptions' versions (``order_place``), one statement each on PostgreSQL, against the ORM forms
they replace (SQLite's road): the same answers, the same rows."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from prorata.billing.models import Payment, PaymentMethodKind, PaymentStatus
from prorata.console.services import credit_adjust
from prorata.payments.models import PaymentMethod
from prorata.subscriptions.models import Order, OrderStatus, Subscription
from prorata.subscriptions.queries import (
    checkout_reads,
    checkout_reads_orm,
    order_place,
    order_place_orm,
)
from prorata_core.money import Money
from prorata_core.periods import utc
from tests.app.subscriptions.support import buy, customer, save_card, staff

pytestmark = pytest.mark.django_db

READS = [checkout_reads, checkout_reads_orm]


def as_compared(reads):
    card = reads.card
    return (reads.busy, reads.balances,
            None if card is None else (card.pk, model_to_dict(card), card.created_at))


@pytest.fixture
def world(acme, clock):
    """Acme with a removed card, a saved one and the default one, credit from staff, an
    order still placed (awaiting its payment) and a paid one; Globex with its own default card."""
    account, alice = acme
    clock.set(utc(2026, 1, 1))
    removed = save_card(account, alice)
    paid = buy(account, alice, "standard", "annual", 3, idempotency_key="paid-key").order
    clock.set(utc(2026, 2, 1))
    other = save_card(account, alice, "5555 5555 5555 4444")
    default = save_card(account, alice, "4000 0566 5566 5556")
    PaymentMethod.objects.filter(pk=default).update(is_default=True)
    PaymentMethod.objects.filter(account=account).exclude(pk=default).update(is_default=False)
    PaymentMethod.objects.filter(pk=removed).update(removed_at=utc(2026, 2, 1))
    waiting = buy(account, alice, "pro", "annual", 2, idempotency_key="waiting-key").order
    Order.objects.filter(pk=waiting.pk).update(status=OrderStatus.PLACED)
    credit_adjust(account=account, amount=Money(4321, "USD"), reason="Outage", idempotency_key="c",
                  actor=staff("agent@prorata.example", "support_agent"))
    globex, carol = customer("Globex", "US", "carol@globex.example", currency="USD")
    foreign = save_card(globex, carol)
    return {"account": account, "globex": globex, "removed": removed, "other": other,
            "default": default, "foreign": foreign, "paid": paid, "waiting": waiting}


@pytest.mark.parametrize("key", ["paid-key", "new-key"])
@pytest.mark.parametrize("card", [None, "other", "default", "removed", "foreign", 999_999,
                                  2**63, -(2**63) - 1, 0, -1])
def test_the_reads_equal_the_orm_s(world, key, card):
    card_id = world[card] if isinstance(card, str) else card
    found = [as_compared(read(account_id=world["account"].pk, key=key, payment_method_id=card_id))
             for read in READS]
    assert found[0] == found[1]
    busy, balances, chosen = found[0]
    expected_busy = [world["waiting"].pk] + ([world["paid"].pk] if key == "paid-key" else [])
    assert sorted(pk for pk, _key in busy) == sorted(expected_busy)
    assert balances == {"USD": 4321}  # the staff credit
    if card in (None, "default"):
        assert chosen[0] == world["default"]
    elif card == "other":
        assert chosen[0] == world["other"]
    else:  # removed, another account's, unknown
        assert chosen is None


def test_an_account_without_cards_balances_or_orders(clock):
    account, _user = customer("Empty", "US", "e@empty.example", currency="USD")
    for read in READS:
        reads = read(account_id=account.pk, key="k", payment_method_id=None)
        assert (reads.busy, reads.balances, reads.card) == ([], {}, None)


def test_the_reads_are_one_statement_on_postgresql(world):
    with CaptureQueriesContext(connection) as captured:
        checkout_reads(account_id=world["account"].pk, key="k", payment_method_id=None)
    assert len(captured.captured_queries) == (1 if connection.vendor == "postgresql" else 3)


def placing(account, subscription_ids):
    order = Order(account=account, kind="change", status=OrderStatus.PLACED, currency="USD",
                  subtotal=1234, tax=0, total=1234, credit_applied=0, amount_due=1234,
                  credit_created=0, snapshot={"items": [{"a": 1}]},
                  expected_versions={str(i): 1 for i in subscription_ids},
                  idempotency_key=f"place-{account.pk}", request_fingerprint="f" * 64,
                  placed_by=None, by_staff=False, created_at=utc(2026, 3, 1))
    payment = Payment(account=account, method=PaymentMethodKind.CARD, payment_method=None,
                      method_label="Card", currency="USD", amount=1234,
                      status=PaymentStatus.PENDING, attempt=1, created_at=utc(2026, 3, 1))
    return order, payment


def stored(order, payment):
    keep = lambda obj: {k: v for k, v in model_to_dict(obj).items()  # noqa: E731
                        if k not in ("id", "account", "order", "idempotency_key",
                                     "expected_versions")}
    saved = Order.objects.get(pk=order.pk)
    return (keep(saved), sorted(saved.expected_versions.values()),
            keep(Payment.objects.get(pk=payment.pk)),
            Payment.objects.get(pk=payment.pk).idempotency_key.replace(str(order.pk), "<id>"))


@pytest.mark.parametrize("reserve", [True, False], ids=["a change", "a first purchase"])
def test_placing_writes_what_the_orm_writes(acme, clock, reserve):
    account, alice = acme
    clock.set(utc(2026, 1, 1))
    save_card(account, alice)
    buy(account, alice, "standard", "annual", 2)
    twin, bob = customer("Twin", "US", "bob@twin.example", currency="USD")
    save_card(twin, bob)
    buy(twin, bob, "standard", "annual", 2)
    rows = []
    for place, who in ((order_place, account), (order_place_orm, twin)):
        ids = list(Subscription.objects.filter(account=who).values_list("pk", flat=True))
        before = Subscription.objects.get(account=who).version
        order, payment = placing(who, ids if reserve else [])
        with transaction.atomic(), CaptureQueriesContext(connection) as captured:
            place(order=order, payment=payment, key_prefix="prorata:order:", key_suffix=":1",
                  reserve=ids if reserve else [])
        assert payment.order_id == order.pk and not order._state.adding
        assert payment.idempotency_key == f"prorata:order:{order.pk}:1"
        assert Subscription.objects.get(account=who).version == before + (1 if reserve else 0)
        rows.append(stored(order, payment))
        one = place is order_place and connection.vendor == "postgresql"
        assert len(captured.captured_queries) == (1 if one else 2 + reserve)
    assert rows[0] == rows[1]
    assert rows[0][2]["amount"] == Money(1234, "USD").amount
