"""The billing run's progress, watched from beside it: a bar on a terminal and gauges in the metrics.

:class:`RunWatcher` runs on a thread of its own (its own database connection) while the run works,
and reads two cheap things every second: how many renewals exist (the top of their primary key, an
index lookup, whichever process wrote them) and, once renewing is over, how many renewal payments
are still to charge. The run itself is not slowed down or changed: it knows nothing of the watcher.

:func:`progress_line` is the pure rendering: ``Renewing ██████░░░░ 61,200/100,000 (61 %) 4,080/s
ETA 0:10``, then ``Charging: 1,204 card payments to go``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import DatabaseError, connections
from django.db.models import Max
from django.db.models.functions import Mod

from prorata.common import metrics

BAR = 24


def progress_line(*, done: int, total: int, seconds: float) -> str:
    """One line of the renewal step: bar, counts, share, rate (per second) and time left.
    ``seconds`` since the step began; the rate and ETA are left out until there is a rate."""
    total = max(total, done)
    share = done / total if total else 1.0
    filled = round(BAR * share)
    line = f"Renewing {'█' * filled}{'░' * (BAR - filled)} {done:,}/{total:,} ({share:.0%})"
    if done and seconds > 0:
        rate = done / seconds
        left = round((total - done) / rate)
        line += f" {rate:,.0f}/s ETA {left // 60}:{left % 60:02d}"
    return line


def charging_line(*, pending: int) -> str:
    return f"Charging: {pending:,} card payment{'s' if pending != 1 else ''} to go"


@dataclass
class Reading:
    renewed: int
    due: int
    pending: int


class RunWatcher:
    """Watch the billing run started at ``at`` (of ``partition``) until :meth:`stop`; each second,
    pass a line to ``show`` (``None``: metrics only) and set the run's gauges."""

    def __init__(self, *, at: datetime, partition: tuple[int, int] | None,
                 show: Callable[[str], None] | None, every: float = 1.0) -> None:
        self.at, self.partition, self.show, self.every = at, partition, show, every
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="bill-run-progress", daemon=True)
        self.first_id = self._top_renewal_id()
        self.due = self._due()

    def __enter__(self) -> RunWatcher:
        metrics.BILL_RUN_DUE.set(self.due)
        metrics.BILL_RUN_RENEWED.set(0)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        self._thread.join()
        metrics.BILL_RUN_DUE.set(0)
        metrics.BILL_RUN_RENEWED.set(0)

    def _watch(self) -> None:
        started = time.monotonic()
        try:
            while not self._stopping.wait(self.every):
                try:
                    self._read(started)
                except DatabaseError:
                    # A reading the database could not give now (SQLite busy): the next one will.
                    continue
        finally:
            connections.close_all()  # this thread's

    def _read(self, started: float) -> None:
        renewed = self._top_renewal_id() - self.first_id
        metrics.BILL_RUN_RENEWED.set(renewed)
        if self.show is None:
            return
        if renewed < self.due:
            self.show(progress_line(done=renewed, total=self.due,
                                    seconds=time.monotonic() - started))
        else:
            self.show(charging_line(pending=self._pending()))

    def _top_renewal_id(self) -> int:
        from prorata.jobs.models import Renewal

        return Renewal.objects.aggregate(top=Max("id"))["top"] or 0

    def _due(self) -> int:
        from prorata.subscriptions.models import Subscription, SubscriptionStatus

        due = Subscription.objects.filter(status=SubscriptionStatus.ACTIVE, auto_renew=True,
                                          period_end__lte=self.at)
        return self._of_partition(due).count()

    def _pending(self) -> int:
        from prorata.billing.models import Payment, PaymentStatus

        pending = Payment.objects.filter(status=PaymentStatus.PENDING,
                                         idempotency_key__startswith="renewal:")
        return self._of_partition(pending).count()

    def _of_partition(self, queryset):  # type: ignore[no-untyped-def]
        if self.partition is None:
            return queryset
        index, count = self.partition
        return queryset.annotate(_part=Mod("account_id", count)).filter(_part=index)
