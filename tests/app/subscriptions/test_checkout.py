"""The checkout (DESIGN §8): idempotency, stale quotes, refused cards, VAT numbers, unknown outcomes,
concurrency, staff and corporate orders. Every test ends with the books balanced (conftest)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection

from prorata.accounts.models import Account, AuditEntry
from prorata.billing.models import (
    Document,
    DocumentCounter,
    DocumentKind,
    DocumentStatus,
    LedgerEntry,
    Payment,
    PaymentStatus,
)
from prorata.billing.selectors import account_balance, credit_balance
from prorata.billing.services import invoice_record_payment
from prorata.notifications.models import OutboxMessage
from prorata.payments.gateway import ChargeOutcome, get_gateway
from prorata.payments.models import PaymentMethod, SandboxCharge
from prorata.subscriptions import services
from prorata.subscriptions.errors import (
    CheckoutInProgress,
    IdempotencyConflict,
    NotPermitted,
    OrderInProgress,
    PaymentFailed,
    PaymentMethodRequired,
    QuoteChanged,
)
from prorata.subscriptions.models import Order, OrderStatus, Subscription, SubscriptionStatus
from prorata.subscriptions.selectors import CheckoutItem, order_quote
from prorata.subscriptions.services import checkout_place, payment_reconcile
from prorata_core.errors import (
    AdvisorPriced,
    CorporateAccount,
    DowngradeNeedsSupport,
    InvalidVatNumber,
)
from prorata_core.periods import utc
from prorata_core.tax import REVERSE_CHARGE_MENTION, TaxRule
from tests.app.subscriptions.support import (
    DECLINED_CARD,
    NO_FUNDS_CARD,
    TIMEOUT_CARD,
    assert_books_balance,
    buy,
    card,
    customer,
    key,
    ledger_rows,
    numbers,
    save_card,
    usd,
)

pytestmark = pytest.mark.django_db

STANDARD_2 = CheckoutItem("webinar", "standard", "annual", 2)
PRO_2 = CheckoutItem("webinar", "pro", "annual", 2)


def quote_of(account, user, item, **options):
    return order_quote(account=account, user=user, product_code=item.product_code,
                       plan_code=item.plan_code, cycle_code=item.cycle_code,
                       quantity=item.quantity,
                       **({"unit_amount": item.unit_amount} if item.unit_amount else {}), **options)


def place(account, user, item, quote, idempotency_key=None, **options):
    return checkout_place(account=account, user=user, idempotency_key=idempotency_key or key(),
                          items=[item], expected=[quote.fingerprint], **options)


def state(account):
    """Everything a refused checkout must leave as it was."""
    subscription = Subscription.objects.filter(account=account).values().first()
    return {
        "subscription": subscription,
        "documents": list(Document.objects.filter(account=account).values_list("id", flat=True)),
        "ledger": ledger_rows(account),
        "balance": account_balance(account),
        "counters": list(DocumentCounter.objects.values_list("series", "year", "last")),
        "cards": list(PaymentMethod.objects.filter(account=account).values_list("id", flat=True)),
        "mails": OutboxMessage.objects.count(),
        "account": Account.objects.filter(pk=account.pk).values().get(),
    }


@pytest.fixture
def acme_standard(acme, clock):
    """Acme on Standard annual × 2 since 2026-01-01, paid with a saved card; clock 2026-04-01."""
    account, alice = acme
    save_card(account, alice)
    buy(account, alice, "standard", "annual", 2)
    clock.set(utc(2026, 4, 1))
    return account, alice


# --- first purchase ---------------------------------------------------------------------------

def test_a_first_purchase_fixes_the_account_currency_and_saves_the_new_card(clock):
    clock.set(utc(2026, 1, 1))
    account, alice = customer("Initech", "US", "peter@initech.example")
    assert account.currency == ""
    result = buy(account, alice, "lite", "monthly", 3, card_token=card())
    account.refresh_from_db()
    assert account.currency == "USD"
    assert result.amount_charged == usd("177.00") and result.invoice.number == "2026-000001"
    method = PaymentMethod.objects.get(account=account)
    assert (method.last4, method.is_default) == ("4242", True)
    assert Payment.objects.get().payment_method == method
    subscription = Subscription.objects.get(account=account)
    assert (subscription.status, subscription.version) == (SubscriptionStatus.ACTIVE, 1)
    assert subscription.events.get().kind == "purchased"
    assert result.invoice.lines.get().subscription == subscription
    entry = AuditEntry.objects.filter(action="order.place").get()
    assert (entry.actor, entry.account) == (alice, account)


def test_money_due_needs_a_card(acme):
    account, alice = acme
    before = state(account)
    with pytest.raises(PaymentMethodRequired) as refused:
        buy(account, alice, "lite", "monthly", 1)
    assert refused.value.message == "This order has an amount to pay: enter your card details."
    assert state(account) == before and Order.objects.count() == 0


def test_a_mistyped_card_is_refused_before_anything_is_written(acme):
    account, alice = acme
    from prorata.payments.errors import CardRejected

    with pytest.raises(CardRejected):
        buy(account, alice, "lite", "monthly", 1, card_token=card("4242 4242 4242 4241"))
    assert Order.objects.count() == 0 and PaymentMethod.objects.count() == 0


# --- idempotency --------------------------------------------------------------------------------

def test_a_double_submit_charges_once_and_returns_the_first_answer(acme_standard):
    account, alice = acme_standard
    quote = quote_of(account, alice, PRO_2)
    first = place(account, alice, PRO_2, quote, idempotency_key="double-click")
    again = place(account, alice, PRO_2, quote, idempotency_key="double-click")
    assert again.replayed and not first.replayed
    assert (again.order, again.invoice, again.credit_notes) == (
        first.order, first.invoice, first.credit_notes)
    assert again.amount_charged == first.amount_charged == usd("2985.86")
    assert SandboxCharge.objects.count() == 2  # the first purchase, and this change once
    assert Payment.objects.filter(order=first.order).count() == 1
    assert Order.objects.count() == 2


def test_the_same_key_with_another_request_is_a_conflict(acme_standard):
    account, alice = acme_standard
    quote = quote_of(account, alice, PRO_2)
    place(account, alice, PRO_2, quote, idempotency_key="k1")
    before = state(account)
    other = CheckoutItem("webinar", "pro", "annual", 3)
    with pytest.raises(IdempotencyConflict) as conflict:
        place(account, alice, other, quote_of(account, alice, other), idempotency_key="k1")
    assert conflict.value.http_status == 409
    assert "already used for a different order" in conflict.value.message
    assert state(account) == before


def test_keys_are_scoped_to_the_account(acme_standard, bistro):
    account, alice = acme_standard
    place(account, alice, PRO_2, quote_of(account, alice, PRO_2), idempotency_key="shared")
    other, jeanne = bistro
    save_card(other, jeanne)
    lite = CheckoutItem("webinar", "lite", "monthly", 1)
    result = place(other, jeanne, lite, quote_of(other, jeanne, lite), idempotency_key="shared")
    assert not result.replayed and result.order.account == other


def test_a_retry_while_the_first_request_runs_is_in_progress(acme_standard, monkeypatch):
    account, alice = acme_standard
    quote = quote_of(account, alice, PRO_2)
    sandbox = get_gateway()
    seen = []

    class Reentrant:
        def charge(self, **kwargs):
            # The customer's second click arrives while the bank is still answering the first.
            with pytest.raises(CheckoutInProgress) as busy:
                place(account, alice, PRO_2, quote, idempotency_key="slow")
            seen.append(busy.value)
            return sandbox.charge(**kwargs)

    monkeypatch.setattr(services, "get_gateway", Reentrant)
    result = place(account, alice, PRO_2, quote, idempotency_key="slow")
    assert result.status == OrderStatus.PAID
    assert seen[0].code == "in_progress" and "safe to send the same request again" in seen[0].message


# --- stale quotes and concurrent changes ------------------------------------------------------

def test_a_stale_quote_is_refused_with_the_new_summary_and_nothing_written(acme_standard, clock):
    account, alice = acme_standard
    quote = quote_of(account, alice, PRO_2)
    clock.advance(timedelta(days=3))
    before = state(account)
    with pytest.raises(QuoteChanged) as changed:
        place(account, alice, PRO_2, quote)
    new = changed.value.quote.items[0]
    assert new.fingerprint != quote.fingerprint
    assert new.order.lines[0].amount == usd("-1770.61")  # 272 days left instead of 275
    summary = changed.value.params["summary"]
    assert summary["items"][0]["totals"]["amount_due"] == new.totals.amount_due.amount
    assert summary["items"][0]["period"]["start"] == "2026-04-04T00:00:00Z"
    assert state(account) == before and Order.objects.count() == 1
    # placing the new summary works
    assert place(account, alice, PRO_2, new).status == OrderStatus.PAID


def test_a_second_change_on_a_quote_made_before_the_first_gets_quote_changed(acme_standard):
    account, alice = acme_standard
    upgrade = quote_of(account, alice, PRO_2)
    more = CheckoutItem("webinar", "standard", "annual", 5)
    more_licenses = quote_of(account, alice, more)
    place(account, alice, more, more_licenses)
    before = state(account)
    with pytest.raises(QuoteChanged) as changed:
        place(account, alice, PRO_2, upgrade)
    assert state(account) == before
    assert changed.value.params["summary"]["items"][0]["subscription_version"] == 3


@pytest.mark.skipif(connection.vendor != "postgresql", reason="threads need PostgreSQL row locks")
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_changes_on_one_account_one_wins_the_other_gets_quote_changed(demo_catalog, clock):
    clock.set(utc(2026, 1, 1))
    account, alice = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    save_card(account, alice)
    buy(account, alice, "standard", "annual", 2)
    clock.set(utc(2026, 4, 1))
    items = [PRO_2, CheckoutItem("webinar", "standard", "annual", 4)]
    quotes = [quote_of(account, alice, item) for item in items]
    barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def run(index):
        try:
            barrier.wait()
            outcomes[index] = place(account, alice, items[index], quotes[index])
        except Exception as error:
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [o for o in outcomes if isinstance(o, services.CheckoutResult)]
    lost = [o for o in outcomes if isinstance(o, QuoteChanged)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert Order.objects.filter(status=OrderStatus.PAID).count() == 2
    assert numbers(DocumentKind.INVOICE) == ["2026-000001", "2026-000002"]
    assert_books_balance()


# --- refused cards -----------------------------------------------------------------------------

@pytest.mark.parametrize(("number", "code", "message"), [
    (DECLINED_CARD, "payment_declined", "Your card was declined. Use another card."),
    (NO_FUNDS_CARD, "insufficient_funds", "Your card has insufficient funds. Use another card."),
])
def test_a_refused_card_changes_nothing_and_another_card_then_works(
    acme_standard, number, code, message
):
    account, alice = acme_standard
    quote = quote_of(account, alice, PRO_2)
    before = state(account)
    token = card(number)
    with pytest.raises(PaymentFailed) as refused:
        place(account, alice, PRO_2, quote, card_token=token, idempotency_key="try-1")
    assert (refused.value.code, refused.value.message, refused.value.http_status) == (
        code, message, 402)
    assert state(account) == before  # the refused card is not saved either
    order = Order.objects.get(idempotency_key="try-1")
    assert (order.status, order.failure_code) == (OrderStatus.FAILED, code)
    assert order.payments.get().status == PaymentStatus.FAILED
    # the same request again answers the same, without a second attempt
    with pytest.raises(PaymentFailed):
        place(account, alice, PRO_2, quote, card_token=token, idempotency_key="try-1")
    assert SandboxCharge.objects.count() == 2
    # the same summary, placed again with a good card, goes through; numbers have no gap
    result = place(account, alice, PRO_2, quote, card_token=card(), idempotency_key="try-2")
    assert result.status == OrderStatus.PAID and result.amount_charged == usd("2985.86")
    assert numbers(DocumentKind.INVOICE) == ["2026-000001", "2026-000002"]
    assert numbers(DocumentKind.CREDIT_NOTE) == ["CN-2026-000001"]


# --- VAT numbers -------------------------------------------------------------------------------

def test_an_invalid_vat_number_is_refused_before_anything_is_written(bistro):
    account, jeanne = bistro
    save_card(account, jeanne)
    lite = CheckoutItem("webinar", "lite", "monthly", 5)
    quote = quote_of(account, jeanne, lite)
    before = state(account)
    with pytest.raises(InvalidVatNumber) as refused:
        place(account, jeanne, lite, quote, vat_number="FR12345678901")
    assert refused.value.code == "invalid_vat_number"
    assert "not a valid French VAT number" in refused.value.message
    assert state(account) == before and Order.objects.count() == 0


def test_a_vat_number_given_at_checkout_is_kept_and_reverse_charged(jan1):
    account, hans = customer("Hansa GmbH", "DE", "hans@hansa.example", currency="EUR")
    save_card(account, hans)
    lite = CheckoutItem("webinar", "lite", "monthly", 2)
    assert quote_of(account, hans, lite).order.tax.rate_bp == 1900
    quote = quote_of(account, hans, lite, vat_number="de 136 695 976")
    assert quote.order.tax.rule == TaxRule.REVERSE_CHARGE
    result = place(account, hans, lite, quote, vat_number="de 136 695 976")
    account.refresh_from_db()
    assert account.vat_number == "DE136695976"
    assert (result.invoice.tax, result.invoice.total) == (0, 11000)
    snapshot = result.invoice.snapshot
    assert (snapshot["tax_rule"], snapshot["mention"]) == ("reverse_charge", REVERSE_CHARGE_MENTION)
    assert snapshot["buyer"]["vat_number"] == "DE136695976"


def test_a_quote_without_the_vat_number_does_not_match_a_checkout_with_it(jan1):
    account, hans = customer("Hansa GmbH", "DE", "hans@hansa.example", currency="EUR")
    save_card(account, hans)
    lite = CheckoutItem("webinar", "lite", "monthly", 2)
    with pytest.raises(QuoteChanged) as changed:
        place(account, hans, lite, quote_of(account, hans, lite), vat_number="DE136695976")
    assert changed.value.quote.tax.rule == TaxRule.REVERSE_CHARGE
    account.refresh_from_db()
    assert account.vat_number == ""


# --- unknown outcomes and reconciliation ------------------------------------------------------

@pytest.fixture
def gateway_behind(monkeypatch):
    """The sandbox, except that its lookup does not know of a charge until ``caught_up`` is set
    (a provider still working on a request that timed out)."""
    from prorata.payments.sandbox import SandboxGateway

    state = {"caught_up": False}
    lookup = SandboxGateway.lookup

    def behind(self, *, idempotency_key):
        return lookup(self, idempotency_key=idempotency_key) if state["caught_up"] else None

    monkeypatch.setattr(SandboxGateway, "lookup", behind)
    return state


def test_an_unknown_outcome_waits_for_reconciliation_and_is_completed_once(
    acme_standard, clock, gateway_behind
):
    account, alice = acme_standard
    save_card(account, alice, TIMEOUT_CARD)  # now the default card
    quote = quote_of(account, alice, PRO_2)
    more = CheckoutItem("webinar", "standard", "annual", 3)
    earlier = quote_of(account, alice, more)
    result = place(account, alice, PRO_2, quote, idempotency_key="timeout")
    assert result.status == OrderStatus.PLACED and result.invoice is None
    assert "Do not pay again" in result.message
    assert Payment.objects.get(order=result.order).status == PaymentStatus.UNKNOWN
    # a replay says the same; another order waits
    assert place(account, alice, PRO_2, quote, idempotency_key="timeout").status == "placed"
    with pytest.raises(QuoteChanged):  # the pending order reserved the subscription
        place(account, alice, more, earlier)
    with pytest.raises(OrderInProgress):
        place(account, alice, more, quote_of(account, alice, more))
    # the job asks the gateway, which says it was charged: the order completes, once
    clock.advance(timedelta(minutes=1))
    gateway_behind["caught_up"] = True
    (done,) = payment_reconcile(older_than=timedelta(0))
    assert done.status == OrderStatus.PAID and done.invoice.number == "2026-000002"
    assert payment_reconcile(older_than=timedelta(0)) == []
    assert SandboxCharge.objects.filter(idempotency_key__startswith="prorata:order").count() == 2
    assert Subscription.objects.get(account=account).plan.code == "pro"
    assert OutboxMessage.objects.filter(template="receipt", context__kind="change").count() == 1
    replay = place(account, alice, PRO_2, quote, idempotency_key="timeout")
    assert replay.replayed and replay.invoice == done.invoice


def test_a_payment_the_gateway_never_saw_fails_at_reconciliation(acme_standard, monkeypatch):
    account, alice = acme_standard
    quote = quote_of(account, alice, PRO_2)
    version = Subscription.objects.get(account=account).version

    class Crashing:
        def charge(self, **kwargs):
            raise ConnectionError("the process died before the request left")

        def lookup(self, **kwargs):
            return None

    monkeypatch.setattr(services, "get_gateway", Crashing)
    result = place(account, alice, PRO_2, quote)
    assert result.status == OrderStatus.PLACED
    (failed,) = payment_reconcile(older_than=timedelta(0))
    assert failed.status == OrderStatus.FAILED
    assert failed.order.failure_message.startswith("Your payment did not reach the bank")
    assert Subscription.objects.get(account=account).version == version  # the quote is valid again
    mail = OutboxMessage.objects.get(template="payment_failed")
    assert mail.context["amount_due"] == {"amount": 298586, "currency": "USD"}
    monkeypatch.undo()
    assert place(account, alice, PRO_2, quote).status == OrderStatus.PAID


# --- policy, staff and corporate accounts ------------------------------------------------------

def test_a_plan_downgrade_is_refused_online_but_support_does_it_with_the_same_rules(
    acme, support, clock
):
    account, alice = acme
    save_card(account, alice)
    buy(account, alice, "pro", "annual", 2)
    clock.set(utc(2026, 4, 1))
    lite = CheckoutItem("webinar", "lite", "annual", 2)
    with pytest.raises(DowngradeNeedsSupport) as refused:
        quote_of(account, alice, lite)
    assert refused.value.message.startswith("A plan downgrade is done by our support team")
    with pytest.raises(NotPermitted):
        quote_of(account, alice, lite, by_staff=True)
    quote = quote_of(account, support, lite, by_staff=True)
    assert quote.totals.credit_created == usd("2422.36")  # 4,776.00 × 275/365 − 2 × 588.00
    result = place(account, support, lite, quote, by_staff=True)
    assert result.status == OrderStatus.PAID and result.amount_charged == usd("0")
    assert credit_balance(account) == usd("2422.36")
    entry = AuditEntry.objects.get(action="staff.order.place")
    assert (entry.actor, entry.account, entry.after["by_staff"]) == (support, account, True)


def test_a_corporate_account_is_invoiced_by_its_advisor_and_pays_by_transfer(globex, advisor):
    account, hans = globex
    enterprise = CheckoutItem("webinar", "enterprise", "annual", 20, unit_amount=240000)
    with pytest.raises(CorporateAccount) as refused:
        quote_of(account, hans, CheckoutItem("webinar", "pro", "annual", 20))
    assert "contact your advisor" in refused.value.message
    with pytest.raises(NotPermitted):  # a customer never sets a price
        quote_of(account, hans, enterprise)
    quote = quote_of(account, advisor, enterprise, by_staff=True)
    result = place(account, advisor, enterprise, quote, by_staff=True)
    invoice = result.invoice
    assert result.status == OrderStatus.INVOICED and result.amount_charged.amount == 0
    assert (invoice.total, invoice.amount_due, invoice.status) == (4800000, 4800000, "open")
    assert invoice.due_at == utc(2026, 1, 31)  # net 30
    assert invoice.snapshot["due_at"] == "2026-01-31T00:00:00Z"
    assert invoice.snapshot["tax_rule"] == TaxRule.REVERSE_CHARGE
    assert account_balance(account).amount == -4800000
    assert SandboxCharge.objects.count() == 0
    assert OutboxMessage.objects.count() == 0  # an open invoice is not a receipt yet
    payment = invoice_record_payment(invoice=invoice, amount=invoice_money(invoice),
                                     reference="SEPA-2026-0042", actor=advisor)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == ("paid", 4800000, 0)
    assert payment.method == "bank_transfer" and account_balance(account).amount == 0
    mail = OutboxMessage.objects.get()
    assert (mail.to, mail.template, mail.attachments) == (
        "hans@globex.example", "receipt", [{"kind": "invoice", "id": invoice.pk}])
    # the advisor adds licenses later: the negotiated price is kept
    more = CheckoutItem("webinar", "enterprise", "annual", 25)
    assert quote_of(account, advisor, more, by_staff=True).order.lines[1].unit_amount.amount == 240000


def invoice_money(invoice):
    from prorata_core.money import Money

    return Money(invoice.amount_due, invoice.currency)


def test_a_customer_may_not_buy_an_advisor_priced_plan(acme):
    account, alice = acme
    with pytest.raises(AdvisorPriced):
        quote_of(account, alice, CheckoutItem("webinar", "enterprise", "annual", 20))


def test_only_billing_contacts_order(acme, django_user_model):
    account, _alice = acme
    from prorata.accounts.services import membership_set_roles

    bob = django_user_model.objects.create_user("bob@acme.example", "pw")
    membership_set_roles(actor=None, account=account, user=bob, admin=True)
    with pytest.raises(NotPermitted):
        quote_of(account, bob, STANDARD_2)
    stranger = django_user_model.objects.create_user("eve@evil.example", "pw")
    with pytest.raises(NotPermitted):
        checkout_place(account=account, user=stranger, idempotency_key="x", expected=["x"],
                       items=[STANDARD_2])


# --- trials and reactivation ---------------------------------------------------------------------

def test_a_free_trial_is_followed_by_a_purchase_of_the_same_subscription(acme, clock):
    account, alice = acme
    trial = services.subscription_start_trial(account=account, product_code="webinar", actor=alice)
    assert (trial.status, trial.period_end) == ("trialing", utc(2026, 1, 15))
    clock.set(utc(2026, 1, 10))
    quote = quote_of(account, alice, STANDARD_2)
    assert quote.kind == "purchase" and len(quote.order.lines) == 1  # no credit for a trial
    result = place(account, alice, STANDARD_2, quote, card_token=card())
    subscription = Subscription.objects.get(account=account)
    assert subscription.pk == trial.pk and subscription.status == "active"
    assert (subscription.period_start, subscription.period_end) == (utc(2026, 1, 10), utc(2027, 1, 10))
    assert result.credit_notes == ()


def test_an_expired_subscription_is_reactivated_from_payment(acme_standard, clock):
    account, alice = acme_standard
    clock.set(utc(2027, 2, 1))
    Subscription.objects.filter(account=account).update(status=SubscriptionStatus.EXPIRED)
    quote = quote_of(account, alice, STANDARD_2)
    assert quote.kind == "reactivation" and len(quote.order.lines) == 1
    place(account, alice, STANDARD_2, quote)
    subscription = Subscription.objects.get(account=account)
    assert (subscription.status, subscription.period_start) == ("active", utc(2027, 2, 1))
    assert numbers(DocumentKind.INVOICE) == ["2026-000001", "2027-000001"]  # a new year's series


# --- queries --------------------------------------------------------------------------------------

def test_a_quote_costs_at_most_eight_queries(acme_standard, django_assert_max_num_queries):
    account, alice = acme_standard
    with django_assert_max_num_queries(8):
        quote_of(account, alice, PRO_2)


def test_the_documents_of_a_checkout_are_final(acme_standard):
    account, alice = acme_standard
    result = place(account, alice, PRO_2, quote_of(account, alice, PRO_2))
    assert Document.objects.filter(number__isnull=True).count() == 0
    assert result.invoice.status == DocumentStatus.PAID
    assert LedgerEntry.objects.filter(account=account, document=result.invoice).count() == 2
    assert ChargeOutcome.SUCCEEDED  # the sandbox answered
