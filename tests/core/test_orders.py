import itertools
import random
from datetime import timedelta
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from prorata_core.catalog import ANNUAL, MONTHLY
from prorata_core.errors import (
    CurrencyMismatch,
    InvalidAmount,
    InvalidInstant,
    InvalidLicenseCount,
    ValidationError,
)
from prorata_core.money import Money
from prorata_core.orders import (
    Configuration,
    LineKind,
    OrderKind,
    Term,
    price_order,
    settle,
)
from prorata_core.periods import Period, cycle_period, period_starting, utc
from prorata_core.tax import TaxDecision, TaxRule
from tests.demo_catalog import CATALOG, FRENCH_VAT, NO_TAX, config

USD0 = Money(0, "USD")

anchors = st.datetimes(
    min_value=utc(2000, 1, 1).replace(tzinfo=None), max_value=utc(2060, 12, 31).replace(tzinfo=None),
    timezones=st.just(utc(2000, 1, 1).tzinfo),
)  # fmt: skip
paid_plans = st.sampled_from(["lite", "standard", "pro"])
cycles = st.sampled_from(["monthly", "annual"])
quantities = st.integers(1, 500)
rates = st.sampled_from([0, 550, 1700, 2000, 2100, 2550, 2700])
invoiced_amounts = st.integers(0, 10**9)


def term_of(configuration, anchor, invoiced=None):
    period = period_starting(anchor, configuration.cycle.months)
    return Term(configuration, period, anchor,
                configuration.amount if invoiced is None else Money(invoiced, configuration.currency))


def tax(rate_bp):
    return TaxDecision(rate_bp=rate_bp, rule=TaxRule.DOMESTIC, country="FR", mention=None)


def test_a_purchase_charges_one_full_period_from_now():
    order = price_order(kind=OrderKind.PURCHASE, at=utc(2026, 3, 11, 15, 30),
                        target=config("standard", "monthly", 3, "EUR"), tax=FRENCH_VAT,
                        credit_balance=Money(0, "EUR"))
    (line,) = order.lines
    assert line.period == Period(utc(2026, 3, 11, 15, 30), utc(2026, 4, 11, 15, 30))
    assert (line.amount, line.tax, line.total) == (Money(35700, "EUR"), Money(7140, "EUR"),
                                                   Money(42840, "EUR"))
    assert line.ratio == 1 and line.description == "Standard, monthly, 3 licenses"
    assert order.totals.amount_due == Money(42840, "EUR")


def test_a_reactivation_is_priced_like_a_purchase_and_credit_is_applied_first():
    order = price_order(kind=OrderKind.REACTIVATION, at=utc(2026, 6, 2),
                        target=config("lite", "annual", 1), tax=NO_TAX,
                        credit_balance=Money(10000, "USD"))
    assert order.totals.credit_applied == Money(10000, "USD")
    assert order.totals.amount_due == Money(48800, "USD")
    assert order.next_billing_date == utc(2027, 6, 2)


def test_credit_larger_than_the_total_is_applied_only_up_to_it():
    order = price_order(kind=OrderKind.PURCHASE, at=utc(2026, 1, 1),
                        target=config("lite", "monthly", 1), tax=NO_TAX,
                        credit_balance=Money(100000, "USD"))
    assert order.totals.credit_applied == Money(5900, "USD")
    assert order.totals.amount_due == USD0


def test_a_change_from_a_free_trial_credits_nothing():
    trial = Configuration(CATALOG.plan("free_trial"), MONTHLY, 1, USD0)
    current = Term(trial, Period(utc(2026, 3, 1), utc(2026, 3, 15)), utc(2026, 3, 1), USD0)
    order = price_order(kind=OrderKind.CHANGE, at=utc(2026, 3, 5), target=config("pro", "annual", 1),
                        tax=NO_TAX, credit_balance=USD0, current=current)
    assert [line.kind for line in order.lines] == [LineKind.CHARGE]
    assert order.totals.amount_due == Money(238800, "USD")


def test_a_billing_period_change_restarts_the_cycle():
    current = term_of(config("standard", "annual", 1), utc(2026, 1, 1))
    order = price_order(kind=OrderKind.CHANGE, at=utc(2026, 7, 2, 12), tax=NO_TAX,
                        target=config("standard", "monthly", 1), credit_balance=USD0, current=current)
    credit, charge = order.lines
    assert credit.ratio == Fraction(182 * 86400 + 12 * 3600, 365 * 86400)
    assert charge.period == Period(utc(2026, 7, 2, 12), utc(2026, 8, 2, 12))


def test_a_renewal_into_another_billing_period_starts_a_new_cycle_at_the_period_end():
    current = term_of(config("lite", "annual", 1), utc(2026, 1, 31))
    order = price_order(kind=OrderKind.RENEWAL, at=utc(2027, 2, 1), tax=NO_TAX,
                        target=config("lite", "monthly", 1), credit_balance=USD0, current=current)
    assert order.period == Period(utc(2027, 1, 31), utc(2027, 2, 28))


def test_renewal_before_the_period_ends_is_refused():
    current = term_of(config("lite", "monthly", 1), utc(2026, 1, 1))
    with pytest.raises(InvalidInstant) as refused:
        price_order(kind=OrderKind.RENEWAL, at=utc(2026, 1, 31, 23, 59, 59), tax=NO_TAX,
                    target=current.configuration, credit_balance=USD0, current=current)
    assert "before it ends" in refused.value.message


@pytest.mark.parametrize("at", [utc(2025, 12, 31, 23, 59, 59), utc(2026, 2, 1)])
def test_a_change_outside_the_current_period_is_refused(at):
    current = term_of(config("lite", "monthly", 1), utc(2026, 1, 1))
    with pytest.raises(InvalidInstant) as refused:
        price_order(kind=OrderKind.CHANGE, at=at, tax=NO_TAX,
                    target=config("pro", "monthly", 1), credit_balance=USD0, current=current)
    assert "outside the current period" in refused.value.message


@pytest.mark.parametrize("kind", [OrderKind.CHANGE, OrderKind.RENEWAL])
def test_a_change_or_renewal_needs_the_current_term(kind):
    with pytest.raises(ValidationError):
        price_order(kind=kind, at=utc(2026, 1, 1), tax=NO_TAX, target=config("lite", "monthly", 1),
                    credit_balance=USD0)


def test_currencies_cannot_mix():
    with pytest.raises(CurrencyMismatch):
        price_order(kind=OrderKind.PURCHASE, at=utc(2026, 1, 1), tax=NO_TAX,
                    target=config("lite", "monthly", 1), credit_balance=Money(0, "EUR"))
    current = term_of(config("lite", "monthly", 1, "EUR"), utc(2026, 1, 1))
    with pytest.raises(CurrencyMismatch) as refused:
        price_order(kind=OrderKind.CHANGE, at=utc(2026, 1, 5), tax=NO_TAX,
                    target=config("pro", "monthly", 1), credit_balance=USD0, current=current)
    assert "keep its currency" in refused.value.message


def test_license_counts_outside_the_plan_are_refused():
    with pytest.raises(InvalidLicenseCount) as refused:
        price_order(kind=OrderKind.PURCHASE, at=utc(2026, 1, 1), tax=NO_TAX,
                    target=config("lite", "monthly", 0), credit_balance=USD0)
    assert refused.value.params["min"] == 1
    assert "between 1 and 10000" in refused.value.message


def test_naive_instants_are_refused():
    with pytest.raises(InvalidInstant):
        price_order(kind=OrderKind.PURCHASE, at=utc(2026, 1, 1).replace(tzinfo=None), tax=NO_TAX,
                    target=config("lite", "monthly", 1), credit_balance=USD0)


def test_settle_refuses_a_negative_balance_and_mixed_lines():
    with pytest.raises(InvalidAmount):
        settle([], Money(-1, "USD"))
    order = price_order(kind=OrderKind.PURCHASE, at=utc(2026, 1, 1), tax=NO_TAX,
                        target=config("lite", "monthly", 1), credit_balance=USD0)
    with pytest.raises(CurrencyMismatch):
        settle(order.lines, Money(0, "EUR"))


def test_one_license_is_singular():
    assert config("pro", "annual", 1).describe() == "Pro, annual, 1 license"


# -- properties ---------------------------------------------------------------------------------


@given(anchor=anchors, plan=paid_plans, cycle=cycles, qty=quantities, rate=rates,
       invoiced=invoiced_amounts)
def test_change_at_first_instant_credits_all_and_at_last_nearly_nothing(
    anchor, plan, cycle, qty, rate, invoiced
):
    current = term_of(config(plan, cycle, qty), anchor, invoiced)
    target = config("pro" if plan != "pro" else "lite", cycle, qty)
    at_start = price_order(kind=OrderKind.CHANGE, at=current.period.start, target=target,
                           tax=tax(rate), credit_balance=USD0, current=current)
    last = current.period.end - timedelta(seconds=1)
    at_end = price_order(kind=OrderKind.CHANGE, at=last, target=target, tax=tax(rate),
                         credit_balance=USD0, current=current)
    if invoiced == 0:
        assert [line.kind for line in at_start.lines] == [LineKind.CHARGE]
        return
    assert at_start.lines[0].ratio == 1
    assert at_start.lines[0].amount == Money(-invoiced, "USD")
    seconds = current.period.seconds
    assert at_end.lines[0].ratio == Fraction(1, seconds)
    assert abs(at_end.lines[0].amount.amount) <= invoiced // seconds + 1
    if invoiced * 2 < seconds:
        assert at_end.lines[0].amount == USD0


@given(anchor=anchors, plan=paid_plans, cycle=cycles, qty=quantities, invoiced=invoiced_amounts,
       fraction=st.fractions(min_value=0, max_value=1), rate=rates)
def test_credit_never_exceeds_invoice_and_credit_plus_used_is_the_invoice(
    anchor, plan, cycle, qty, invoiced, fraction, rate
):
    current = term_of(config(plan, cycle, qty), anchor, invoiced)
    seconds = current.period.seconds
    offset = int(fraction * (seconds - 1))
    at = current.period.start + timedelta(seconds=offset)
    order = price_order(kind=OrderKind.CHANGE, at=at, target=config("pro", "monthly", 1),
                        tax=tax(rate), credit_balance=USD0, current=current)
    if invoiced == 0:
        return
    credit = -order.lines[0].amount.amount
    assert 0 <= credit <= invoiced
    used_exact = Fraction(invoiced) * Fraction(offset, seconds)
    assert abs(credit + used_exact - invoiced) <= Fraction(1, 2)
    assert order.lines[0].ratio == Fraction(seconds - offset, seconds)


@given(anchor=anchors, a=st.tuples(paid_plans, cycles, quantities),
       b=st.tuples(paid_plans, cycles, quantities), rate=rates,
       balance=st.integers(0, 10**7), fraction=st.fractions(min_value=0, max_value=1))
def test_order_total_is_the_exact_sum_of_its_lines(anchor, a, b, rate, balance, fraction):
    current = term_of(config(*a), anchor)
    at = current.period.start + timedelta(seconds=int(fraction * (current.period.seconds - 1)))
    order = price_order(kind=OrderKind.CHANGE, at=at, target=config(*b), tax=tax(rate),
                        credit_balance=Money(balance, "USD"), current=current)
    totals = order.totals
    assert totals.subtotal.amount == sum(line.amount.amount for line in order.lines)
    assert totals.tax.amount == sum(line.tax.amount for line in order.lines)
    assert totals.total == totals.subtotal + totals.tax
    for line in order.lines:
        exact = Fraction(line.unit_amount.amount * line.quantity) * line.ratio
        sign = -1 if line.kind is LineKind.CREDIT else 1
        assert abs(line.amount.amount - sign * exact) <= Fraction(1, 2)
        assert abs(line.tax.amount - Fraction(line.amount.amount * line.tax_rate_bp, 10000)) <= Fraction(1, 2)
    assert totals.amount_due.amount >= 0 and totals.credit_created.amount >= 0
    assert not (totals.amount_due and totals.credit_created)
    assert totals.credit_applied.amount <= balance
    assert totals.total == totals.amount_due + totals.credit_applied - totals.credit_created


@given(anchor=anchors, a=st.tuples(paid_plans, cycles, quantities),
       b=st.tuples(paid_plans, cycles, quantities), rate=rates,
       fraction=st.fractions(min_value=0, max_value=1))
def test_changing_and_changing_straight_back_costs_the_same_as_restarting(anchor, a, b, rate, fraction):
    # A detour A → B → A at one instant must cost exactly what restarting A there costs (A → A):
    # each extra line is offset by another within a cent per line.
    assume(a != b)
    original = term_of(config(*a), anchor)
    at = original.period.start + timedelta(seconds=int(fraction * (original.period.seconds - 1)))
    there = price_order(kind=OrderKind.CHANGE, at=at, target=config(*b), tax=tax(rate),
                        credit_balance=USD0, current=original)
    after_there = Term(there.configuration, there.period, at, there.lines[-1].amount)
    back = price_order(kind=OrderKind.CHANGE, at=at, target=config(*a), tax=tax(rate),
                       credit_balance=USD0, current=after_there)
    restart = price_order(kind=OrderKind.CHANGE, at=at, target=config(*a), tax=tax(rate),
                          credit_balance=USD0, current=original)
    detour = there.totals.total.amount + back.totals.total.amount
    lines = len(there.lines) + len(back.lines)
    assert abs(detour - restart.totals.total.amount) <= lines
    assert back.lines[0].amount == -there.lines[-1].amount  # the new period is wholly unused
    assert back.configuration == original.configuration


@given(anchor=anchors, a=st.tuples(paid_plans, cycles, quantities),
       b=st.tuples(paid_plans, cycles, quantities), rate=rates, balance=st.integers(0, 10**7),
       seed=st.integers(0, 1000))
def test_totals_do_not_depend_on_the_order_of_the_lines(anchor, a, b, rate, balance, seed):
    current = term_of(config(*a), anchor)
    at = current.period.start + timedelta(days=3)
    order = price_order(kind=OrderKind.CHANGE, at=at, target=config(*b), tax=tax(rate),
                        credit_balance=Money(balance, "USD"), current=current)
    renewal = price_order(kind=OrderKind.RENEWAL, at=current.period.end, target=config(*a),
                          tax=tax(rate), credit_balance=USD0, current=current)
    lines = [*order.lines, *renewal.lines]
    shuffled = lines[:]
    random.Random(seed).shuffle(shuffled)
    assert settle(lines, Money(balance, "USD")) == settle(shuffled, Money(balance, "USD"))
    for permutation in itertools.permutations(order.lines):
        assert settle(list(permutation), Money(balance, "USD")) == order.totals


def test_annual_and_monthly_cycles_are_twelve_and_one_months():
    assert (ANNUAL.months, MONTHLY.months) == (12, 1)
    assert cycle_period(utc(2026, 1, 1), 12, 0).seconds == 365 * 86400
