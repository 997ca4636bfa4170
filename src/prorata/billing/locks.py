"""Every row lock the services take, in one place and always in the same order (STYLE rule 9):

1. the **account** row (:func:`lock_account`): every write to an account's subscriptions, orders,
   documents, payments and ledger happens under it, so those rows need no lock of their own;
2. the account's **subscription** rows, by ascending id (:func:`lock_subscriptions`);
3. the **document counters**, by (series, year) (:func:`lock_counters`, or
   :func:`counters_take`, which locks and moves them all in one statement): shared by all
   accounts, held only in the transaction that finalises documents.

Taking them in this order everywhere means two transactions never wait for each other in a cycle.
On SQLite, ``FOR UPDATE`` is a no-op: transactions begin ``IMMEDIATE`` (settings) and so already
hold the database's single write lock; the functions still read the rows.

Call these inside ``transaction.atomic()``; a lock lasts until that transaction ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.db import IntegrityError, transaction
from django.db.models import Q

from prorata.accounts.models import Account
from prorata.billing.models import DocumentCounter
from prorata.billing.queries import counters_reserve
from prorata.subscriptions.models import Subscription


def _require_transaction() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("Row locks are taken inside transaction.atomic(); they would end at once.")


def lock_account(account_id: int) -> Account:
    """Lock and return the account row (first lock of every transaction that writes billing)."""
    _require_transaction()
    return Account.objects.select_for_update().get(pk=account_id)


def lock_subscriptions(
    *, account_id: int, product_codes: Iterable[str] = (), ids: Iterable[int] = ()
) -> list[Subscription]:
    """Lock the account's subscriptions to the products ``product_codes`` and/or with ``ids``, by
    ascending id.

    Call after :func:`lock_account`. The plan, cycle, product and the invoice of the current
    period come along (no lock on them).
    """
    _require_transaction()
    product_codes, ids = list(product_codes), list(ids)
    if not product_codes and not ids:
        return []
    wanted = Q(product__code__in=product_codes) | Q(id__in=ids)
    # of=("self",): lock the subscriptions only, not the catalog rows joined to them.
    return list(
        Subscription.objects.select_for_update(of=("self",))
        .select_related("plan", "cycle", "product", "invoice")
        .filter(wanted, account_id=account_id)
        .order_by("id")
    )


def lock_counters(keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], DocumentCounter]:
    """Lock (creating them if needed) the counters of these (series, year) pairs, in sorted order.

    Call last, after the account and subscription locks. A missing counter is created inside a
    savepoint; when another transaction creates it at the same moment, the unique constraint
    refuses ours and the row is read (and locked) again.
    """
    _require_transaction()
    counters: dict[tuple[str, int], DocumentCounter] = {}
    for series, year in sorted(set(keys)):
        for _attempt in range(3):
            try:
                counter, _created = DocumentCounter.objects.select_for_update().get_or_create(
                    series=series, year=year
                )
            except IntegrityError:  # created concurrently by another transaction: read it
                continue
            counters[(series, year)] = counter
            break
        else:
            raise RuntimeError(f"Could not create the document counter {series}{year}.")
    return counters


def counters_take(counts: Mapping[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    """Reserve ``counts[(series, year)]`` numbers of each counter, locking them in sorted order
    (call last, after the account and subscription locks); returns the first number reserved of
    each. Gapless: the numbers are given back if the caller's transaction rolls back."""
    _require_transaction()
    wanted = {key: count for key, count in counts.items() if count > 0}
    return {key: last - wanted[key] + 1 for key, last in counters_reserve(wanted).items()}
