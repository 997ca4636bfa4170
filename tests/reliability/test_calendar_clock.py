"""Calendar and clock (issue 18, RELIABILITY-PLAN T14, T24): month ends, leap days, changes on a
period's edges, daylight-saving changes in the account's time zone, the year of a document near
midnight on 31 December, a clock moved backwards, a billing run across midnight on the 1st.

Everything goes through the real services and the billing run, on the project's movable clock,
at exact instants. After each story the subscriptions' invoiced periods must tile time: each
renewal starts exactly where the period before it ended, no period is empty or reversed, no
period is invoiced twice (and the suite's invariants after the test, I10 among them).
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from prorata.billing.models import Document, DocumentKind, DocumentLine, LedgerEntry, LineKind
from prorata.jobs import billing_run
from prorata.jobs.billing_run import bill_run
from prorata.subscriptions.models import Subscription
from prorata_core.errors import InvalidInstant
from prorata_core.periods import utc
from tests.app.subscriptions.support import buy, customer, save_card

pytestmark = pytest.mark.django_db


def charged_periods(subscription: Subscription) -> list[tuple[datetime, datetime]]:
    """The subscription's charged periods ``[start, end)``, in order (issued invoices)."""
    return list(DocumentLine.objects.filter(
        subscription=subscription, kind=LineKind.CHARGE, document__kind=DocumentKind.INVOICE,
        document__number__isnull=False).order_by("period_start", "id")
        .values_list("period_start", "period_end"))


def assert_tiles(subscription: Subscription) -> list[tuple[datetime, datetime]]:
    """Each period non-empty, each one starting exactly where the one before ended, and the last
    one the subscription's current period."""
    subscription.refresh_from_db()
    periods = charged_periods(subscription)
    assert periods, "nothing invoiced"
    for start, end in periods:
        assert start < end, (start, end)
        assert start.utcoffset() == end.utcoffset() == timedelta(0)
    for (_, end), (next_start, _) in pairwise(periods):
        assert next_start == end, f"gap or overlap: a period ends {end}, the next starts {next_start}"
    assert periods[-1] == (subscription.period_start, subscription.period_end)
    return periods


def renew(clock, subscription: Subscription, times: int, *, late: timedelta = timedelta(0)) -> None:
    """``times`` billing runs, each at the subscription's period end (+ ``late``): one renewal each."""
    for _ in range(times):
        subscription.refresh_from_db()
        clock.set(subscription.period_end + late)
        assert bill_run().renewed == 1


def a_customer(clock, at: datetime, *, country: str = "US", time_zone: str = "",
               email: str = "alice@acme.example"):
    clock.set(at)
    currency = "EUR" if country == "FR" else "USD"
    account, user = customer("Acme Corp", country, email, currency=currency, time_zone=time_zone)
    save_card(account, user)
    return account, user


# --- month ends and leap days ----------------------------------------------------------------------

def _month_day(year: int, month: int, day: int) -> datetime:
    """The oracle: day ``day`` of the month, or its last day when shorter (the anchor's day kept)."""
    return utc(year, month, min(day, calendar.monthrange(year, month)[1]))


@pytest.mark.parametrize("day", [28, 29, 30, 31])
def test_monthly_anchors_at_month_ends_keep_their_day(clock, demo_catalog, day):
    """Bought on 2026-01-{day}: every renewal falls on that day, or the month's last day when it is
    shorter, and goes back to the day afterwards (31 → 28 Feb → 31 Mar → 30 Apr → 31 May: DESIGN
    example 4's chain), never drifting to the shorter day."""
    account, user = a_customer(clock, utc(2026, 1, day))
    buy(account, user, "lite", "monthly", 2)
    subscription = Subscription.objects.get(account=account)
    renew(clock, subscription, 6)
    periods = assert_tiles(subscription)
    assert [start for start, _ in periods] == [_month_day(2026, month, day) for month in range(1, 8)]
    if day == 31:
        assert [end.date().isoformat() for _, end in periods[:4]] == [
            "2026-02-28", "2026-03-31", "2026-04-30", "2026-05-31"]


def test_a_leap_day_annual_subscription_goes_back_to_the_29th_in_2032(clock, demo_catalog):
    """Bought 2028-02-29, annual: 2029-02-28, 2030-02-28, 2031-02-28, then 2032-02-29 again
    (Lago's leap-day drift and overlap, F15)."""
    account, user = a_customer(clock, utc(2028, 2, 29, 10, 15))
    buy(account, user, "lite", "annual", 1)
    subscription = Subscription.objects.get(account=account)
    renew(clock, subscription, 4)
    periods = assert_tiles(subscription)
    assert [end for _, end in periods] == [
        utc(2029, 2, 28, 10, 15), utc(2030, 2, 28, 10, 15), utc(2031, 2, 28, 10, 15),
        utc(2032, 2, 29, 10, 15), utc(2033, 2, 28, 10, 15)]


def test_a_monthly_start_on_30_january_2028_renews_on_29_february_then_the_30th(clock, demo_catalog):
    """Lago's F14: a subscription started on 30 January got the wrong period in February."""
    account, user = a_customer(clock, utc(2028, 1, 30))
    buy(account, user, "lite", "monthly", 1)
    subscription = Subscription.objects.get(account=account)
    renew(clock, subscription, 3)
    assert [end.date().isoformat() for _, end in assert_tiles(subscription)] == [
        "2028-02-29", "2028-03-30", "2028-04-30", "2028-05-30"]


def test_a_late_run_still_starts_the_period_at_its_due_instant(clock, demo_catalog):
    """A run 7 h 59 min late invoices the period from the instant it was due, not from the run:
    no time is lost nor invoiced twice, and the next period follows on."""
    account, user = a_customer(clock, utc(2026, 1, 31, 16, 0))
    buy(account, user, "lite", "monthly", 1)
    subscription = Subscription.objects.get(account=account)
    renew(clock, subscription, 3, late=timedelta(hours=7, minutes=59))
    periods = assert_tiles(subscription)
    assert [start for start, _ in periods[1:]] == [
        utc(2026, 2, 28, 16), utc(2026, 3, 31, 16), utc(2026, 4, 30, 16)]


# --- changes on a period's edges ----------------------------------------------------------------

PERIOD_START, PERIOD_END = utc(2026, 3, 1), utc(2026, 4, 1)


def _change_at(clock, at: datetime, licenses: int = 3):
    account, user = a_customer(clock, PERIOD_START)
    buy(account, user, "lite", "monthly", 5)
    subscription = Subscription.objects.get(account=account)
    invoiced = subscription.invoiced_amount
    clock.set(at)
    result = buy(account, user, "lite", "monthly", licenses)
    credit = DocumentLine.objects.get(subscription=subscription, kind=LineKind.CREDIT,
                                      document__number__isnull=False)
    return subscription, invoiced, result, credit


def test_a_change_at_the_very_start_of_the_period_credits_all_of_it(clock, demo_catalog):
    subscription, invoiced, _result, credit = _change_at(clock, PERIOD_START)
    assert (credit.period_start, credit.period_end) == (PERIOD_START, PERIOD_END)
    assert credit.amount == -invoiced
    subscription.refresh_from_db()
    assert (subscription.period_start, subscription.period_end) == (PERIOD_START, PERIOD_END)


def test_a_change_one_second_before_the_end_issues_no_credit_note_of_nothing(clock, demo_catalog):
    """1 s of 31 days: the order keeps its exact credit line (that second, rounded to 0.00), but
    no document of nothing is issued (no 0.00 credit note, no 0.00 ledger row); the change
    still applies: the new period starts then, and the run renews it once at its end."""
    account, user = a_customer(clock, PERIOD_START)
    buy(account, user, "lite", "monthly", 5)
    subscription = Subscription.objects.get(account=account)
    at = PERIOD_END - timedelta(seconds=1)
    clock.set(at)
    result = buy(account, user, "lite", "monthly", 3)
    (line,) = [line for item in result.order.summary.items for line in item.lines
               if line.kind == LineKind.CREDIT]
    assert (line.period.start, line.period.end) == (at, PERIOD_END)
    assert line.ratio == Fraction(1, 31 * 86400)
    assert (line.amount.amount, line.tax.amount) == (0, 0)
    assert result.credit_notes == ()
    assert not Document.objects.filter(account=account, kind=DocumentKind.CREDIT_NOTE).exists()
    assert not DocumentLine.objects.filter(subscription=subscription,
                                           kind=LineKind.CREDIT).exists()
    assert not LedgerEntry.objects.filter(account=account, amount=0).exists()
    assert result.invoice.total == 3 * 5900
    subscription.refresh_from_db()
    assert (subscription.quantity, subscription.period_start, subscription.period_end) == (
        3, at, utc(2026, 4, 30, 23, 59, 59))
    renew(clock, subscription, 1)
    assert charged_periods(subscription)[-1] == (utc(2026, 4, 30, 23, 59, 59),
                                                 utc(2026, 5, 31, 23, 59, 59))


def test_a_change_at_the_period_end_belongs_to_the_next_period(clock, demo_catalog):
    """At the end instant the period is over: the change is refused (renew first, a clear
    error, nothing written); once the run has renewed, the same change at the same instant
    credits the whole new period."""
    account, user = a_customer(clock, PERIOD_START)
    buy(account, user, "lite", "monthly", 5)
    subscription = Subscription.objects.get(account=account)
    clock.set(PERIOD_END)
    documents = Document.objects.count()
    with pytest.raises(InvalidInstant):
        buy(account, user, "lite", "monthly", 3)
    assert Document.objects.count() == documents
    assert bill_run().renewed == 1
    buy(account, user, "lite", "monthly", 3)
    credit = DocumentLine.objects.get(subscription=subscription, kind=LineKind.CREDIT)
    assert (credit.period_start, credit.period_end) == (PERIOD_END, utc(2026, 5, 1))
    subscription.refresh_from_db()
    assert credit.amount == -DocumentLine.objects.filter(
        subscription=subscription, kind=LineKind.CHARGE, period_start=PERIOD_END,
        document__order__isnull=True).get().amount


# --- daylight-saving time, displayed dates and document years --------------------------------------

def _page(user, account) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(f"/billing/{account.pk}/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(("zone", "bought", "renewed", "shown"), [
    # Paris, spring forward on 2026-03-29 at 02:00 local (01:00Z): bought 00:30 CET, renewed
    # 01:30 CEST the next month (the instant keeps its UTC time, the local time moves an hour).
    ("Europe/Paris", utc(2026, 3, 28, 23, 30), utc(2026, 4, 28, 23, 30),
     "April 29, 2026 at 1:30\u202fAM (Europe/Paris)"),
    # Paris, fall back on 2026-10-25 at 03:00 local (01:00Z): bought 00:30 CEST on the 25th,
    # renewed at 23:30 CET on 24 November.
    ("Europe/Paris", utc(2026, 10, 24, 22, 30), utc(2026, 11, 24, 22, 30),
     "November 24, 2026 at 11:30\u202fPM (Europe/Paris)"),
    # New York, 2026-03-08 and 2026-11-01.
    ("America/New_York", utc(2026, 3, 8, 6, 30), utc(2026, 4, 8, 6, 30),
     "April 8, 2026 at 2:30\u202fAM (America/New_York)"),
    ("America/New_York", utc(2026, 11, 1, 5, 30), utc(2026, 12, 1, 5, 30),
     "December 1, 2026 at 12:30\u202fAM (America/New_York)"),
])
def test_daylight_saving_changes_move_the_local_hour_not_the_period(
        clock, demo_catalog, zone, bought, renewed, shown):
    """Periods are instants: across a DST change a monthly period keeps its UTC time (no hour
    lost or billed twice), and the billing center shows its end in the account's zone, named."""
    account, user = a_customer(clock, bought, time_zone=zone)
    buy(account, user, "lite", "monthly", 1)
    subscription = Subscription.objects.get(account=account)
    subscription.refresh_from_db()
    assert subscription.period_end == renewed
    page = _page(user, account)
    assert shown in page, shown
    renew(clock, subscription, 2)
    periods = assert_tiles(subscription)
    assert periods[1][0] == renewed
    renewal = Document.objects.filter(account=account, order__isnull=True).earliest("id")
    local = renewal.issued_at.astimezone(ZoneInfo(zone))
    assert local.date() == renewed.astimezone(ZoneInfo(zone)).date()


@pytest.mark.parametrize(("at", "year"), [
    (utc(2026, 12, 31, 22, 59, 59), 2026),  # 23:59:59 in Paris
    (utc(2026, 12, 31, 23, 0, 0), 2027),  # midnight in Paris
    (utc(2026, 12, 31, 23, 30), 2027),
])
@pytest.mark.parametrize("time_zone", ["Europe/Paris", "America/New_York"])
def test_a_document_takes_the_year_of_the_seller_at_its_issue(clock, demo_catalog, at, year,
                                                             time_zone):
    """The seller is in Paris (the default ``PRORATA_SELLER_TIME_ZONE``): an invoice issued at
    2026-12-31T23:30Z is dated 1 January 2027 there and numbered in the 2027 series, whatever
    the customer's zone; so is the credit note of a change at the same instant."""
    account, user = a_customer(clock, at, time_zone=time_zone)
    invoice = buy(account, user, "lite", "monthly", 5).invoice
    assert (invoice.year, invoice.number) == (year, f"{year}-000001")
    buy(account, user, "lite", "monthly", 3)
    note = Document.objects.get(kind=DocumentKind.CREDIT_NOTE)
    assert (note.year, note.number) == (year, f"CN-{year}-000001")


# --- the clock moved backwards, and a run across midnight ----------------------------------------

def test_a_clock_moved_back_after_a_run_renews_nothing_twice(clock, demo_catalog):
    """The run at the period end renews; the clock then steps back 2 minutes (NTP), back a
    whole day, and forward again: each run finds the period already renewed (state, not time,
    decides), nothing is invoiced twice and no period is negative."""
    account, user = a_customer(clock, utc(2026, 1, 15, 12))
    buy(account, user, "lite", "monthly", 2)
    subscription = Subscription.objects.get(account=account)
    renew(clock, subscription, 1)
    for instant in (utc(2026, 2, 15, 11, 58), utc(2026, 2, 14, 12), utc(2026, 2, 15, 12),
                    utc(2026, 2, 15, 12, 5)):
        clock.set(instant)
        assert bill_run().renewed == 0
    assert len(assert_tiles(subscription)) == 2


def test_a_clock_moved_back_during_a_run_renews_nothing_twice(clock, demo_catalog, monkeypatch):
    """The clock steps back 2 minutes between the run's renewals and its charge step, then a
    second run starts on the stepped-back clock: the renewals are charged once, nothing is
    renewed again, every period tiles."""
    customers = []
    for index in range(3):
        account, user = a_customer(clock, utc(2026, 1, 15, 12, index),
                                   email=f"c{index}@acme.example")
        buy(account, user, "lite", "monthly", 1)
        customers.append(Subscription.objects.get(account=account))
    charge = billing_run.charge_due

    def stepped_back(*, at, stats, partition=None):
        clock.set(clock.now() - timedelta(minutes=2))
        charge(at=at, stats=stats, partition=partition)
        # A second run on the stepped-back clock (renewing only: this is its charge step).
        assert bill_run(charge=False).renewed == 0

    monkeypatch.setattr(billing_run, "charge_due", stepped_back)
    clock.set(utc(2026, 2, 15, 12, 3))
    stats = bill_run()
    monkeypatch.undo()
    assert (stats.renewed, stats.charged) == (3, 3)
    for subscription in customers:
        assert len(assert_tiles(subscription)) == 2


def test_a_run_across_midnight_on_the_first_renews_each_period_once(clock, demo_catalog,
                                                                    monkeypatch):
    """A run starts at 23:59:59 on 31 March and its clock passes midnight while it renews: it
    renews what was due when it started (23:59:30, 23:59:59), the run after midnight what fell
    due since (00:00:00, 00:00:30); each period once, each starting at its own due instant."""
    subscriptions = []

    def bought(instant: datetime, index: int) -> None:
        account, user = a_customer(clock, instant, email=f"m{index}@acme.example")
        buy(account, user, "lite", "monthly", 1)
        subscriptions.append(Subscription.objects.get(account=account))

    bought(utc(2026, 1, 31, 23, 59, 30), 0)
    bought(utc(2026, 1, 31, 23, 59, 59), 1)
    clock.set(utc(2026, 2, 28, 23, 59, 59))
    assert bill_run().renewed == 2
    bought(utc(2026, 3, 1, 0, 0, 0), 2)
    bought(utc(2026, 3, 1, 0, 0, 30), 3)
    renew_due = billing_run.renew_due

    def across_midnight(**kwargs):
        clock.set(utc(2026, 4, 1, 0, 1))  # the clock goes on while the run works
        return renew_due(**kwargs)

    monkeypatch.setattr(billing_run, "renew_due", across_midnight)
    clock.set(utc(2026, 3, 31, 23, 59, 59))
    assert bill_run().renewed == 2
    monkeypatch.undo()
    assert bill_run().renewed == 2  # at 00:01: the two due at and after midnight
    assert bill_run().renewed == 0
    for subscription in subscriptions:
        assert_tiles(subscription)
    assert [charged_periods(s)[-1][0] for s in subscriptions] == [
        utc(2026, 3, 31, 23, 59, 30), utc(2026, 3, 31, 23, 59, 59), utc(2026, 4, 1),
        utc(2026, 4, 1, 0, 0, 30)]


# --- clocks that disagree (T24) ------------------------------------------------------------------

#: SQL's own clocks: a business time set by the database would disagree with the project clock.
_SQL_CLOCK = re.compile(r"\bNOW\(\)|CURRENT_TIMESTAMP|LOCALTIMESTAMP|CURRENT_DATE|"
                        r"(?:clock|statement|transaction)_timestamp\(|datetime\('now'|['\"]now\(\)")


def test_business_times_come_from_the_project_clock_never_the_database():
    """With the application's clock 5 minutes ahead of or behind the database server's, every
    stored instant must still be the project clock's: no model field takes its time from the
    database or from Django (``auto_now``, ``auto_now_add``, a ``db_default``), and no SQL in
    the code (queries, migrations, triggers) reads the database's clock."""
    from django.apps import apps
    from django.db import models
    from django.db.models import NOT_PROVIDED

    fields = [f"{model._meta.label}.{field.name}" for model in apps.get_models()
              if model._meta.app_label in {app.label for app in apps.get_app_configs()
                                           if app.name.startswith("prorata")}
              for field in model._meta.concrete_fields
              if isinstance(field, models.DateTimeField | models.DateField)
              and (getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
                   or field.db_default is not NOT_PROVIDED)]
    assert fields == []
    src = Path(__file__).resolve().parents[2] / "src"
    reads = [f"{path.relative_to(src)}:{number}" for path in sorted(src.rglob("*"))
             if path.suffix in {".py", ".sql"}
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if _SQL_CLOCK.search(line)]
    assert reads == []


@pytest.mark.django_db(transaction=True)  # the workers' connections see what was committed
def test_two_workers_whose_clocks_differ_by_90_s_renew_each_period_once(
        clock, demo_catalog, monkeypatch):
    """Two billing-run workers at a period boundary, one clock 45 s fast, the other 45 s slow
    (each run reads its own clock; on PostgreSQL they run at the same time, on SQLite the slow
    one first). Subscriptions fall due every 20 s from 60 s before the boundary to 60 s after:
    each is renewed once if one worker's clock has reached its end, else left for later, never
    twice, each new period starting exactly at its end."""
    import threading

    from django.db import connection, connections

    boundary = utc(2026, 3, 1)
    offsets = range(-60, 61, 20)
    subscriptions = []
    for offset in offsets:
        # Bought a month before: 31 Jan 23:59:00 + 1 month is 28 Feb 23:59:00 (boundary - 60 s).
        account, user = a_customer(clock, utc(2026, 2, 1) + timedelta(seconds=offset),
                                   email=f"w{offset + 60}@acme.example")
        buy(account, user, "lite", "monthly", 1)
        subscription = Subscription.objects.get(account=account)
        assert subscription.period_end == boundary + timedelta(seconds=offset)
        subscriptions.append(subscription)
    skews = {"slow": timedelta(seconds=-45), "fast": timedelta(seconds=45)}
    own = threading.local()
    project_now = billing_run.now
    monkeypatch.setattr(billing_run, "now", lambda: project_now() + own.skew)
    clock.set(boundary)
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        own.skew = skews[name]
        try:
            results[name] = bill_run().renewed
        except BaseException as error:
            errors.append(error)
        finally:
            if connection.vendor == "postgresql":
                connections.close_all()

    if connection.vendor == "postgresql":
        threads = [threading.Thread(target=worker, args=(name,)) for name in skews]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    else:
        for name in skews:
            worker(name)
    assert errors == []
    # Due by the fast clock: -60 … +40 (6); the slow clock reaches only -60, which either takes.
    assert results["slow"] + results["fast"] == 6 and results["slow"] <= 1, results
    for subscription, offset in zip(subscriptions, offsets, strict=True):
        periods = assert_tiles(subscription)
        assert len(periods) == (2 if offset <= 45 else 1), (offset, periods)
    monkeypatch.undo()
    clock.set(boundary + timedelta(seconds=60))
    assert bill_run().renewed == 1  # the last one, on time by the project clock
