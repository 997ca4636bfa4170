"""The document counters: the one-statement reservation (``billing.queries.counter_take``) against
the ORM form it replaces, its gaplessness when a transaction rolls back, and under concurrent
transactions on PostgreSQL (each number given once, none skipped)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from prorata.billing.locks import counters_take
from prorata.billing.models import DocumentCounter
from prorata.billing.queries import (
    counter_take,
    counter_take_orm,
    counters_reserve,
    counters_reserve_orm,
)


@pytest.mark.django_db
@pytest.mark.parametrize("take", [counter_take, counter_take_orm], ids=["sql", "orm"])
def test_a_reservation_creates_the_counter_then_moves_it(take):
    with transaction.atomic():
        assert take(series="CN-", year=2031, count=2) == 2
        assert take(series="CN-", year=2031, count=1) == 3
        assert take(series="", year=2031, count=5) == 5
    assert dict(DocumentCounter.objects.filter(year=2031).values_list("series", "last")) == {
        "CN-": 3, "": 5}


@pytest.mark.django_db
def test_both_forms_leave_the_same_rows():
    with transaction.atomic():
        counter_take(series="", year=2032, count=3)
        counter_take_orm(series="", year=2033, count=3)
        counter_take(series="", year=2033, count=1)
        counter_take_orm(series="", year=2032, count=1)
    rows = {year: last for year, last in
            DocumentCounter.objects.filter(year__in=[2032, 2033]).values_list("year", "last")}
    assert rows == {2032: 4, 2033: 4}


@pytest.mark.django_db
def test_several_counters_in_one_statement_as_the_orm_does_them_one_by_one():
    with transaction.atomic():
        counter_take(series="CN-", year=2037, count=4)  # one exists, the others are new
        counter_take_orm(series="CN-", year=2038, count=4)
        with CaptureQueriesContext(connection) as captured:
            sql = counters_reserve({("", 2037): 2, ("CN-", 2037): 1, ("CN-", 2039): 3})
        orm = counters_reserve_orm({("", 2038): 2, ("CN-", 2038): 1, ("CN-", 2039): 3})
    assert len(captured.captured_queries) == 1
    assert sql == {("", 2037): 2, ("CN-", 2037): 5, ("CN-", 2039): 3}
    assert orm == {("", 2038): 2, ("CN-", 2038): 5, ("CN-", 2039): 6}
    rows = dict(DocumentCounter.objects.filter(year__in=[2037, 2038], series="CN-")
                .values_list("year", "last"))
    assert rows == {2037: 5, 2038: 5}
    assert counters_reserve({}) == {} == counters_reserve_orm({})


@pytest.mark.django_db
def test_the_first_number_of_each_counter_and_numbers_given_back_on_rollback():
    with transaction.atomic():
        assert counters_take({("", 2034): 2, ("CN-", 2034): 1}) == {("", 2034): 1, ("CN-", 2034): 1}
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        counters_take({("", 2034): 3})
        1 / 0  # noqa: B018 - the transaction fails after taking its numbers
    with transaction.atomic():
        assert counters_take({("", 2034): 1, ("CN-", 2034): 0}) == {("", 2034): 3}


def test_outside_a_transaction_it_refuses():
    with pytest.raises(RuntimeError, match=r"inside transaction\.atomic"):
        counters_take({("", 2035): 1})


@pytest.mark.skipif(connection.vendor != "postgresql", reason="threads need PostgreSQL row locks")
@pytest.mark.django_db(transaction=True)
def test_concurrent_transactions_get_every_number_once_without_gaps():
    taken: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def run(index: int) -> None:
        try:
            barrier.wait()
            for _round in range(5):
                with transaction.atomic():
                    first = counters_take({("", 2036): 2})[("", 2036)]
                    if index == 0:  # one of them always rolls back: its numbers go to the others
                        transaction.set_rollback(True)
                    else:
                        taken.extend([first, first + 1])
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(taken) == list(range(1, 51))
    assert DocumentCounter.objects.get(series="", year=2036).last == 50
