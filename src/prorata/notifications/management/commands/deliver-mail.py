"""``prorata deliver-mail``: send every due e-mail of the outbox, then stop.

Queues the reset links of pending password-reset requests first
(:func:`~prorata.jobs.periodic.deliver_mail`), then runs
:func:`~prorata.notifications.outbox.outbox_deliver_batch` until a batch claims nothing. Failed
attempts are rescheduled by the project clock (1 min, 5 min, 30 min, 2 h, ...), so they are not due
again in the same run. Run it from cron or a systemd timer every minute, or after ``clock advance``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from prorata.jobs.periodic import deliver_mail


class Command(BaseCommand):
    help = "Send the due e-mails of the outbox (retrying failed ones when they are due)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=100, help="messages claimed per transaction"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        counts = deliver_mail(batch_size=options["batch_size"])
        sent, failed = counts["sent"], counts["failed"]
        self.stdout.write(
            f"Sent {sent} e-mail{'s' if sent != 1 else ''}"
            + (f"; {failed} failed and will be retried or were given up (see the console)."
               if failed else ".")
        )
