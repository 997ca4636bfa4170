"""Model-based test of one customer's money (issue 18; plan T13): Hypothesis draws sequences of
purchases, plan, license and cycle changes, renewal cancellations and resumptions, clock moves with
billing runs, card failures (a declined default card: the renewal is owed, the subscription past
due, then Pay now with a good card), changes whose charge times out (charged, the answer lost:
settled by asking the gateway by the payment's key), staff credits and staff refunds, and after
every step the database must equal an exact model of what the customer paid and owes, and
:func:`check_all` must hold. Dunning's retries and expiry after a failure are left to the calendar
and gateway-fault tests (no clock move while past due).

The model is independent of the pricing engine where it can be: a renewal costs the catalog's
price per license per cycle times the licenses (USD, a US account: no tax), paid first from the
credit balance and the rest by card, and periods follow the anchor by whole cycles (clamped at
month ends, ``dateutil``'s rule). A change is priced by the order summary the customer is shown
(the engine's own oracle is tested in ``tests/core``); the model then holds the product to that
summary: the card is charged exactly its amount due, the balance moves by exactly its credit, and
the subscription takes exactly the configuration and period it announced.

Every money quantity is integer minor units. Settings: ``derandomize`` (a red run replays), a
small number of examples in CI (``PRORATA_STATE_MACHINE_EXAMPLES`` raises it), no shrinking
(``PRORATA_STATE_MACHINE_SHRINK=1`` shrinks a failure to its shortest program).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from prorata.billing.models import (
    Document,
    DocumentKind,
    Payment,
    PaymentMethodKind,
    PaymentStatus,
    Refund,
)
from prorata.billing.renewals import renewal_pay_now
from prorata.billing.selectors import account_balance
from prorata.catalog.models import Price
from prorata.console.models import StaffRefundStatus
from prorata.console.services import credit_adjust, refund_request
from prorata.jobs.billing_run import bill_run
from prorata.payments.models import PaymentMethod
from prorata.subscriptions.models import Order, Subscription, SubscriptionStatus
from prorata.subscriptions.selectors import order_quote
from prorata.subscriptions.services import (
    CheckoutItem,
    checkout_place,
    payments_reconcile_due,
    subscription_cancel_renewal,
    subscription_resume_renewal,
)
from prorata_core.errors import ProrataError
from prorata_core.money import Money
from prorata_core.periods import utc
from tests.app.subscriptions.support import (
    DECLINED_CARD,
    TIMEOUT_CARD,
    card,
    customer,
    save_card,
    staff,
)
from tests.reliability.invariants import check_all

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("PRORATA_STATE_MACHINE_EXAMPLES", "20"))
PLANS = ("lite", "standard", "pro")
CYCLES = ("monthly", "annual")  # the demo catalog has no quarterly price for these plans
_keys = itertools.count(1)


@dataclass
class Expected:
    """The model: what the customer paid by card (net of refunds), the account's balance
    (credit positive, owed negative) and the subscription as it must be."""

    card: int = 0
    balance: int = 0
    plan: str | None = None
    cycle: str | None = None
    licenses: int = 0
    status: str | None = None
    auto_renew: bool = True
    anchor: datetime | None = None
    periods: int = 0  # whole cycles from the anchor to the current period's start
    months: int = 1
    unit: int = 0  # price per license per cycle, minor units
    card_good: bool = True  # the default card pays; False: it is declined
    owed: int = 0  # what the open renewal invoice of a past-due subscription still asks

    @property
    def period_start(self) -> datetime:
        assert self.anchor is not None
        return self.anchor + relativedelta(months=self.months * self.periods)

    @property
    def period_end(self) -> datetime:
        assert self.anchor is not None
        return self.anchor + relativedelta(months=self.months * (self.periods + 1))


class CustomerMoney(RuleBasedStateMachine):
    clock = None  # the test's project clock, set before the machine runs

    def __init__(self) -> None:
        super().__init__()
        # Each example runs in a savepoint rolled back at teardown: a fresh world each time.
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.clock.set(utc(2026, 1, 1))
        self.account, self.user = customer("Model Corp", "US", "model@model.example",
                                           currency="USD")
        self.agent = staff(f"agent{next(_keys)}@prorata.example", "support_agent")
        self.expected = Expected()
        self.card_token: str | None = card()
        self.refundable: dict[int, int] = {}  # invoice id -> what can still be refunded

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    # --- the rules ------------------------------------------------------------------------------

    @initialize(plan=st.sampled_from(PLANS), cycle=st.sampled_from(CYCLES),
                licenses=st.integers(1, 12))
    def first_purchase(self, plan: str, cycle: str, licenses: int) -> None:
        self._order(plan, cycle, licenses)
        assert self.expected.status == SubscriptionStatus.ACTIVE

    @precondition(lambda self: self.expected.status != SubscriptionStatus.PAST_DUE
                  and self.expected.card_good)
    @rule(plan=st.sampled_from(PLANS), cycle=st.sampled_from(CYCLES), licenses=st.integers(1, 12))
    def change(self, plan: str, cycle: str, licenses: int) -> None:
        self._order(plan, cycle, licenses)

    @precondition(lambda self: self.expected.status == SubscriptionStatus.ACTIVE
                  and self.expected.auto_renew)
    @rule()
    def cancel_renewal(self) -> None:
        subscription_cancel_renewal(account=self.account, user=self.user, product_code="webinar")
        self.expected.auto_renew = False

    @precondition(lambda self: self.expected.status == SubscriptionStatus.ACTIVE
                  and not self.expected.auto_renew)
    @rule()
    def resume_renewal(self) -> None:
        subscription_resume_renewal(account=self.account, user=self.user, product_code="webinar")
        self.expected.auto_renew = True

    @precondition(lambda self: self.expected.card_good
                  and self.expected.status != SubscriptionStatus.PAST_DUE)
    @rule(days=st.integers(1, 120), seconds=st.integers(0, 86_399))
    def time_passes(self, days: int, seconds: int) -> None:
        at = self.clock.now() + timedelta(days=days, seconds=seconds)
        self.clock.set(at)
        bill_run()
        model = self.expected
        while model.status == SubscriptionStatus.ACTIVE and model.period_end <= at:
            if not model.auto_renew:
                model.status = SubscriptionStatus.EXPIRED
                break
            total = model.unit * model.licenses
            credit = min(max(model.balance, 0), total)
            model.card += total - credit
            model.balance -= credit
            model.periods += 1
        if model.status == SubscriptionStatus.ACTIVE:
            for invoice in Document.objects.filter(account=self.account, kind=DocumentKind.INVOICE,
                                                   order__isnull=True):
                self.refundable.setdefault(invoice.pk, self._card_paid(invoice))

    @precondition(lambda self: self.expected.status == SubscriptionStatus.ACTIVE
                  and self.expected.card_good)
    @rule()
    def card_breaks(self) -> None:
        # A new default card that the bank declines (the old one stays saved, not default).
        save_card(self.account, self.user, DECLINED_CARD)
        self.expected.card_good = False

    @precondition(lambda self: self.expected.status == SubscriptionStatus.ACTIVE
                  and not self.expected.card_good)
    @rule(seconds=st.integers(0, 3_600))
    def renewal_declined(self, seconds: int) -> None:
        # The billing run at (just after) the period's end, the declined card as the default:
        # what the credit does not cover is owed, the subscription past due (dunning's retries,
        # a day later at the earliest, are the calendar tests' and the gateway faults').
        model = self.expected
        self.clock.set(max(self.clock.now(), model.period_end) + timedelta(seconds=seconds))
        bill_run()
        if not model.auto_renew:
            model.status = SubscriptionStatus.EXPIRED
            return
        total = model.unit * model.licenses
        credit = min(max(model.balance, 0), total)
        model.balance -= total
        model.periods += 1
        if total > credit:
            model.status = SubscriptionStatus.PAST_DUE
            model.owed = total - credit
        else:
            model.balance += total - credit

    @precondition(lambda self: self.expected.status == SubscriptionStatus.PAST_DUE)
    @rule()
    def pay_now_with_a_good_card(self) -> None:
        save_card(self.account, self.user)
        self.expected.card_good = True
        invoice = Document.objects.get(account=self.account, kind=DocumentKind.INVOICE,
                                       order__isnull=True, amount_due__gt=0)
        assert invoice.amount_due == self.expected.owed
        paid = renewal_pay_now(account=self.account, user=self.user, invoice_id=invoice.pk)
        assert paid.status == "paid"
        model = self.expected
        model.card += model.owed
        model.balance += model.owed
        model.owed = 0
        model.status = SubscriptionStatus.ACTIVE
        self.refundable[invoice.pk] = self._card_paid(invoice)

    @precondition(lambda self: self.expected.status != SubscriptionStatus.PAST_DUE
                  and self.expected.card_good)
    @rule(plan=st.sampled_from(PLANS), cycle=st.sampled_from(CYCLES), licenses=st.integers(1, 12))
    def change_whose_charge_times_out(self, plan: str, cycle: str, licenses: int) -> None:
        # A new card the gateway charges but whose answer is lost: the order waits, unknown,
        # until the reconciliation job asks the gateway by the payment's key and applies it.
        self._order(plan, cycle, licenses, token=card(TIMEOUT_CARD), reconcile=True)
        # the timed-out card became the default once it paid: back to the good one
        PaymentMethod.objects.filter(account=self.account).update(is_default=False)
        save_card(self.account, self.user)

    @precondition(lambda self: self.expected.status != SubscriptionStatus.PAST_DUE)
    @rule(cents=st.integers(1, 5_000))
    def staff_credit(self, cents: int) -> None:
        if not Document.objects.filter(account=self.account, kind=DocumentKind.INVOICE).exists():
            return
        credit_adjust(account=self.account, amount=Money(cents, "USD"), reason="Goodwill",
                      actor=self.agent, idempotency_key=f"credit-{next(_keys)}")
        self.expected.balance += cents

    @precondition(lambda self: any(self.refundable.values())
                  and self.expected.status != SubscriptionStatus.PAST_DUE)
    @rule(data=st.data())
    def staff_refund(self, data: st.DataObject) -> None:
        invoice_id = data.draw(st.sampled_from(sorted(i for i, v in self.refundable.items() if v)))
        left = self.refundable[invoice_id]
        cents = data.draw(st.integers(1, min(left, 2_000)))
        refund = refund_request(invoice=Document.objects.get(pk=invoice_id),
                                amount=Money(cents, "USD"), reason="Goodwill", actor=self.agent,
                                idempotency_key=f"refund-{next(_keys)}")
        assert refund.status == StaffRefundStatus.REFUNDED, refund.message
        self.refundable[invoice_id] = left - cents
        self.expected.card -= cents  # back to the card; the credit note and refund cancel out

    # --- what the database must say after every step --------------------------------------------

    @invariant()
    def money_matches_the_model(self) -> None:
        if self.expected.status is None:
            return
        assert self._card_net() == self.expected.card
        assert account_balance(self.account).amount == self.expected.balance
        subscription = Subscription.objects.select_related("plan", "cycle").get(account=self.account)
        model = self.expected
        assert (subscription.plan.code, subscription.cycle.code, subscription.quantity) == (
            model.plan, model.cycle, model.licenses)
        assert subscription.status == model.status
        if model.status == SubscriptionStatus.ACTIVE:
            assert subscription.auto_renew == model.auto_renew
            assert (subscription.period_start, subscription.period_end) == (
                model.period_start, model.period_end)

    @invariant()
    def the_books_hold(self) -> None:
        assert check_all() == []

    # --- helpers --------------------------------------------------------------------------------

    def _order(self, plan: str, cycle: str, licenses: int, *, token: str | None = None,
               reconcile: bool = False) -> None:
        """Quote and place a change (``reconcile``: its payment's outcome may be unknown, then
        settled by the reconciliation job)."""
        before = (self._card_net(), account_balance(self.account).amount)
        try:
            quote = order_quote(account=self.account, user=self.user, product_code="webinar",
                                plan_code=plan, cycle_code=cycle, quantity=licenses)
            result = checkout_place(
                account=self.account, user=self.user, idempotency_key=f"model-{next(_keys)}",
                expected=[quote.fingerprint], items=[CheckoutItem("webinar", plan, cycle, licenses)],
                card_token=token or self.card_token)
        except ProrataError:
            # A refused change (the same configuration, a shorter cycle mid-period...): nothing
            # moved.
            assert (self._card_net(), account_balance(self.account).amount) == before
            return
        self.card_token = None  # saved as the default card by the first purchase
        totals = quote.order.totals
        assert totals.tax.amount == 0
        if reconcile and result.status == "placed":
            # The outcome is unknown (the checkout's own lookup by the key may already settle
            # it: then it is paid at once); nothing is applied until it is known.
            assert (self._card_net(), account_balance(self.account).amount) == before
            self.clock.set(self.clock.now() + timedelta(minutes=3))
            assert payments_reconcile_due()["paid"] == 1
            result = replace(result, status="paid", invoice=Order.objects.get(
                pk=result.order.pk).invoice)
        assert result.status == "paid", result.message
        assert result.amount_charged.amount == totals.amount_due.amount
        assert result.credit_created.amount == totals.credit_created.amount
        model = self.expected
        model.card += totals.amount_due.amount
        model.balance += totals.amount_due.amount - totals.total.amount
        period = quote.order.period
        if model.anchor is None or model.status != SubscriptionStatus.ACTIVE \
                or period.start != model.period_start:
            model.anchor, model.periods = period.start, 0
        model.months = {"monthly": 1, "annual": 12}[cycle]
        assert model.period_end == period.end, "the announced period is not whole cycles"
        model.plan, model.cycle, model.licenses = plan, cycle, licenses
        # A change keeps the customer's Cancel renewal; a purchase or reactivation renews.
        model.auto_renew = model.auto_renew if model.status == SubscriptionStatus.ACTIVE else True
        assert quote.renews == model.auto_renew
        model.status = SubscriptionStatus.ACTIVE
        model.unit = Price.objects.get(plan__code=plan, cycle__code=cycle, currency="USD").unit_amount
        if result.invoice is not None:
            self.refundable[result.invoice.pk] = self._card_paid(result.invoice)

    def _card_net(self) -> int:
        charged = Payment.objects.filter(account=self.account, status=PaymentStatus.SUCCEEDED,
                                         method=PaymentMethodKind.CARD).aggregate(s=Sum("amount"))
        refunded = Refund.objects.filter(account=self.account, status=PaymentStatus.SUCCEEDED
                                         ).aggregate(s=Sum("amount"))
        return (charged["s"] or 0) - (refunded["s"] or 0)

    def _card_paid(self, invoice: Document) -> int:
        return Payment.objects.filter(invoice=invoice, status=PaymentStatus.SUCCEEDED,
                                      method=PaymentMethodKind.CARD).aggregate(s=Sum("amount"))["s"] or 0


def test_one_customers_money_follows_the_model(clock, demo_catalog):
    CustomerMoney.clock = clock
    machine = CustomerMoney.TestCase
    # No shrinking unless asked: on this database a shrink takes minutes; derandomize makes a
    # red run replay the same program, printed step by step.
    phases = list(Phase) if os.environ.get("PRORATA_STATE_MACHINE_SHRINK") else [
        Phase.explicit, Phase.generate]
    machine.settings = settings(max_examples=EXAMPLES, stateful_step_count=12, derandomize=True,
                                deadline=None, suppress_health_check=list(HealthCheck),
                                phases=phases, database=None)
    machine().runTest()
