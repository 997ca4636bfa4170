"""``prorata bill-run``: renew every due subscription at the project clock's instant, then charge.

On a terminal, a progress bar on stderr (renewals done, rate, time left, then the card payments
still to charge); at the end, the counts as one JSON object on stdout. ``--quiet`` (cron) prints
nothing unless something fails. The run's progress is in the metrics either way.
"""

from __future__ import annotations

import json
import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from prorata.jobs.billing_run import CHUNK_SIZE, bill_run


class Command(BaseCommand):
    help = (
        "Renew every subscription whose period has ended (exactly once), then charge the cards. "
        "Safe to interrupt and to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chunk-size", type=int, default=CHUNK_SIZE,
                            help="subscriptions renewed per transaction (default %(default)s)")
        parser.add_argument("--partition", default=None, metavar="INDEX/COUNT",
                            help="only the accounts whose id %% COUNT == INDEX, e.g. 0/2")
        parser.add_argument("--no-charge", action="store_true",
                            help="invoice only; leave the card payments for a later run")
        parser.add_argument("--partitions", type=int, default=None, metavar="N",
                            help="split the run into N partitions: Celery tasks when "
                                 "PRORATA_BROKER_URL is set, else run here one after the other")
        parser.add_argument("--workers", type=int, default=None, metavar="N",
                            help="renew in N processes side by side (PostgreSQL; default: "
                                 "PRORATA_BILL_RUN_WORKERS, or one per core, at most 4; SQLite "
                                 "always uses one)")
        parser.add_argument("--quiet", action="store_true",
                            help="no progress and no summary: print only errors (for cron)")

    def handle(self, *args: Any, **options: Any) -> None:
        partition = None
        if options["partition"]:
            try:
                index, count = (int(part) for part in options["partition"].split("/"))
                if not 0 <= index < count:
                    raise ValueError
            except ValueError:
                raise CommandError(
                    f"--partition {options['partition']!r} is not INDEX/COUNT with "
                    "0 ≤ INDEX < COUNT, e.g. 0/2."
                ) from None
            partition = (index, count)
        if options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1.")
        workers = options["workers"]
        if workers is not None and workers < 1:
            raise CommandError(f"--workers takes a count of at least 1, not {workers}.")
        if workers is None:
            workers = settings.PRORATA_BILL_RUN_WORKERS or min(os.cpu_count() or 1, 4)
        if options["partitions"] is not None:
            if options["partitions"] < 1 or partition is not None:
                raise CommandError(
                    "--partitions takes a count of at least 1, and not together with --partition."
                )
            from prorata.jobs.celery import bill_run_partitioned

            counts = bill_run_partitioned(partitions=options["partitions"],
                                          chunk_size=options["chunk_size"],
                                          charge=not options["no_charge"])
            self.stdout.write(json.dumps(counts))
            return
        from prorata.common.clock import now
        from prorata.jobs.progress import RunWatcher

        terminal = not options["quiet"] and self.stderr.isatty()
        with RunWatcher(at=now(), partition=partition,
                        show=self._show if terminal else None):
            stats = bill_run(chunk_size=options["chunk_size"], partition=partition,
                             charge=not options["no_charge"], workers=workers)
        if terminal:
            self.stderr.write("\r\033[K", style_func=_plain, ending="")
        if stats.failed_ids:
            self.stderr.write(f"{len(stats.failed_ids)} subscription(s) could not be renewed and "
                              "are left for the next run (see the log): "
                              f"{', '.join(map(str, stats.failed_ids[:20]))}")
        if not options["quiet"]:
            self.stdout.write(json.dumps(stats.as_dict()))

    def _show(self, line: str) -> None:
        # One line, rewritten in place.
        self.stderr.write(f"\r\033[K{line}", style_func=_plain, ending="")
        self.stderr.flush()


def _plain(text: str) -> str:
    """Progress is not an error: no red."""
    return text
