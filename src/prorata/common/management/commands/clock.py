"""``prorata clock show | set <instant> | advance <duration>``: read or move the project clock.

Moves need ``PRORATA_CLOCK=movable``. A bad instant or duration is refused with the reason and an
example, exits non-zero and changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from prorata.common.clock import (
    DURATION_EXAMPLES,
    INSTANT_EXAMPLE,
    clock_advance,
    clock_mode,
    clock_set,
    format_instant,
    now,
    parse_duration,
    parse_instant,
)
from prorata_core.errors import ProrataError


class Command(BaseCommand):
    help = "Show the project clock, or move it when PRORATA_CLOCK=movable."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="show|set|advance")
        actions.add_parser("show", help="print the project clock's current instant")
        set_parser = actions.add_parser(
            "set",
            help="move the clock to a UTC instant",
            usage=f"%(prog)s INSTANT  (ISO 8601 in UTC, e.g. {INSTANT_EXAMPLE})",
        )
        set_parser.add_argument("instant", help=f"ISO 8601 UTC instant, e.g. {INSTANT_EXAMPLE}")
        advance_parser = actions.add_parser(
            "advance",
            help="move the clock forward",
            usage=f"%(prog)s DURATION  (positive, e.g. {DURATION_EXAMPLES}; "
            "`clock set` goes back)",
        )
        advance_parser.add_argument("duration", help=f"e.g. {DURATION_EXAMPLES}")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "set":
                instant = parse_instant(options["instant"])
                before = now()
                after = clock_set(instant=instant)
            elif action == "advance":
                step = parse_duration(options["duration"])
                before = now()
                after = clock_advance(duration=step)
            else:
                self.stdout.write(f"{format_instant(now())} ({clock_mode()} clock)")
                return
        except ProrataError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"Clock moved from {format_instant(before)} to {format_instant(after)}")
