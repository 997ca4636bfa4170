"""``prorata bill-run``: renew every due subscription at the project clock's instant, then charge."""

from __future__ import annotations

import json
from typing import Any

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
                            help="only subscriptions whose id %% COUNT == INDEX, e.g. 0/2")
        parser.add_argument("--no-charge", action="store_true",
                            help="invoice only; leave the card payments for a later run")

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
        stats = bill_run(chunk_size=options["chunk_size"], partition=partition,
                         charge=not options["no_charge"])
        self.stdout.write(json.dumps(stats.as_dict()))
