"""DESIGN §3's worked examples, to the cent, through the one pricing engine."""

from fractions import Fraction

import pytest

from prorata_core.errors import DowngradeNeedsSupport
from prorata_core.money import Money
from prorata_core.orders import LineKind, OrderKind, Term, price_order
from prorata_core.periods import Period, cycle_period, utc
from prorata_core.policy import BillingMode, Change, Status, check_order
from prorata_core.tax import tax_decision
from tests.demo_catalog import CATALOG, NO_TAX, config


def usd(text):
    return Money.of(text, "USD")


def eur(text):
    return Money.of(text, "EUR")


def test_example_1_annual_upgrade_usd_no_tax():
    # Given Standard annual × 2, 2026-01-01 → 2027-01-01, invoiced 2,376.00
    current = Term(config("standard", "annual", 2), Period(utc(2026, 1, 1), utc(2027, 1, 1)),
                   utc(2026, 1, 1), usd("2376.00"))
    target = config("pro", "annual", 2)
    assert check_order(kind=OrderKind.CHANGE, billing_mode=BillingMode.SELF_SERVICE,
                       status=Status.ACTIVE, current=current.configuration,
                       target=target) == {Change.UPGRADE}
    # When it is upgraded to Pro annual × 2 on 2026-04-01T00:00Z
    order = price_order(kind=OrderKind.CHANGE, at=utc(2026, 4, 1), target=target, tax=NO_TAX,
                        credit_balance=usd("0"), current=current)
    # Then the unused 275/365 is credited, a full new year is charged, and 2,985.86 is due now
    credit, charge = order.lines
    assert credit.kind is LineKind.CREDIT and credit.ratio == Fraction(275, 365)
    assert credit.amount == usd("-1790.14")
    assert charge.kind is LineKind.CHARGE and charge.amount == usd("4776.00")
    assert charge.period == Period(utc(2026, 4, 1), utc(2027, 4, 1))
    assert order.totals.tax == usd("0")
    assert order.totals.amount_due == usd("2985.86")
    assert order.totals.credit_created == usd("0")
    assert order.next_billing_date == utc(2027, 4, 1)


def test_example_2_fewer_licenses_monthly_eur_french_vat_then_renewal():
    vat = tax_decision(seller_country="FR", customer_country="FR", customer_vat_number=None,
                       at=utc(2026, 3, 11))
    assert vat.rate_bp == 2000
    # Given Lite monthly × 5, 2026-03-01 → 2026-04-01, invoiced 275.00 + 55.00 VAT
    first = price_order(kind=OrderKind.PURCHASE, at=utc(2026, 3, 1),
                        target=config("lite", "monthly", 5, "EUR"), tax=vat, credit_balance=eur("0"))
    assert (first.totals.subtotal, first.totals.tax) == (eur("275.00"), eur("55.00"))
    current = Term(first.configuration, first.period, first.period.start, first.totals.subtotal)
    # When it is reduced to 3 licenses on 2026-03-11T00:00Z
    target = config("lite", "monthly", 3, "EUR")
    assert check_order(kind=OrderKind.CHANGE, billing_mode=BillingMode.SELF_SERVICE,
                       status=Status.ACTIVE, current=current.configuration,
                       target=target) == {Change.FEWER_LICENSES}
    change = price_order(kind=OrderKind.CHANGE, at=utc(2026, 3, 11), target=target, tax=vat,
                         credit_balance=eur("0"), current=current)
    credit, charge = change.lines
    assert credit.ratio == Fraction(21, 31)
    assert (credit.amount, credit.tax) == (eur("-186.29"), eur("-37.26"))
    assert (charge.amount, charge.tax) == (eur("165.00"), eur("33.00"))
    assert charge.period == Period(utc(2026, 3, 11), utc(2026, 4, 11))
    # Then nothing is charged and the account's credit becomes 25.55
    assert change.totals.total == eur("-25.55")
    assert change.totals.amount_due == eur("0")
    assert change.totals.credit_created == eur("25.55")
    assert change.next_billing_date == utc(2026, 4, 11)
    # And at the renewal on 2026-04-11 the invoice is 198.00: 25.55 of credit applied, 172.45 charged
    after_change = Term(change.configuration, change.period, change.period.start, charge.amount)
    renewal = price_order(kind=OrderKind.RENEWAL, at=utc(2026, 4, 11), target=target, tax=vat,
                          credit_balance=change.totals.credit_created, current=after_change)
    assert renewal.period == Period(utc(2026, 4, 11), utc(2026, 5, 11))
    assert renewal.totals.total == eur("198.00")
    assert renewal.totals.credit_applied == eur("25.55")
    assert renewal.totals.amount_due == eur("172.45")


def test_example_3_plan_downgrade_is_refused_online_but_staff_may_do_it():
    current = config("pro", "annual", 2)
    target = config("lite", "annual", 2)
    with pytest.raises(DowngradeNeedsSupport) as refused:
        check_order(kind=OrderKind.CHANGE, billing_mode=BillingMode.SELF_SERVICE,
                    status=Status.ACTIVE, current=current, target=target)
    assert refused.value.code == "downgrade_needs_support"
    assert refused.value.message.startswith("A plan downgrade is done by our support team")
    assert check_order(kind=OrderKind.CHANGE, billing_mode=BillingMode.SELF_SERVICE,
                       status=Status.ACTIVE, current=current, target=target,
                       by_staff=True) == {Change.DOWNGRADE}


def test_example_4_month_end_renewals():
    anchor = utc(2026, 1, 31)
    first = price_order(kind=OrderKind.PURCHASE, at=anchor, target=config("lite", "monthly", 1),
                        tax=NO_TAX, credit_balance=usd("0"))
    renewals = []
    term = Term(first.configuration, first.period, anchor, first.totals.subtotal)
    for _ in range(3):
        renewals.append(term.period.end)
        order = price_order(kind=OrderKind.RENEWAL, at=term.period.end, target=term.configuration,
                            tax=NO_TAX, credit_balance=usd("0"), current=term)
        term = Term(order.configuration, order.period, anchor, order.totals.subtotal)
    assert renewals == [utc(2026, 2, 28), utc(2026, 3, 31), utc(2026, 4, 30)]
    assert term.period == cycle_period(anchor, 1, 3)
    assert CATALOG.plan("lite").rank == 1
