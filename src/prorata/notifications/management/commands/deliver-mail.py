"""``prorata deliver-mail``: send every due e-mail of the outbox, then stop.

Runs :func:`~prorata.notifications.outbox.outbox_deliver_batch` until a batch claims nothing. Failed
attempts are rescheduled by the project clock (1 min, 5 min, 30 min, 2 h, ...), so they are not due
again in the same run. Run it from cron or a systemd timer every minute, or after ``clock advance``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from prorata.notifications.outbox import outbox_deliver_batch


class Command(BaseCommand):
    help = "Send the due e-mails of the outbox (retrying failed ones when they are due)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=100, help="messages claimed per transaction"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        claimed = sent = 0
        while True:
            batch = outbox_deliver_batch(limit=options["batch_size"])
            if batch.claimed == 0:
                break
            claimed += batch.claimed
            sent += batch.sent
        failed = claimed - sent
        self.stdout.write(
            f"Sent {sent} e-mail{'s' if sent != 1 else ''}"
            + (f"; {failed} failed and will be retried or were given up (see the console)."
               if failed else ".")
        )
