"""``prorata reconcile-payments``: settle every checkout payment whose outcome is unknown or that
stayed pending (a crash between the checkout's two transactions), then stop.

Runs :func:`~prorata.subscriptions.services.payments_reconcile_due` once at the project clock's
instant. The scheduler runs the same function every minute; run this from cron (every minute) where
the scheduler does not run, or after ``clock advance`` in a demo.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from prorata.subscriptions.services import payments_reconcile_due


class Command(BaseCommand):
    help = "Settle checkout payments whose outcome is unknown or that stayed pending."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = payments_reconcile_due()
        self.stdout.write(json.dumps(counts, sort_keys=True))
