"""``prorata up``: the web server and the worker together, as ``make run`` starts the demo.

Starts ``prorata serve`` and ``prorata worker`` as two child processes and stays in front of them:
Ctrl-C (SIGINT) or SIGTERM stops both gracefully, and when one of them exits on its own the other
is stopped too (a demo with a web server but no worker would silently stop sending e-mails). Exits
with the status of the child that ended first. In production, run the two under systemd instead
(``deploy/``), each restarted on its own.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

#: Seconds a child gets to stop after SIGTERM before it is killed.
STOP_GRACE = 40


class Command(BaseCommand):
    help = "Run the web server (prorata serve) and the worker (prorata worker) together."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default="127.0.0.1:8000",
                            help="the web server's address:port (default %(default)s)")
        parser.add_argument("--workers", type=int, default=None,
                            help="web worker processes (default: one per core)")

    def handle(self, *args: Any, **options: Any) -> None:
        serve = [sys.executable, "-m", "prorata.cli", "serve", "--bind", options["bind"]]
        if options["workers"] is not None:
            serve += ["--workers", str(options["workers"])]
        children = {
            "web server": subprocess.Popen(serve, start_new_session=True),  # noqa: S603 - ours
            "worker": subprocess.Popen([sys.executable, "-m", "prorata.cli", "worker"],
                                       start_new_session=True),
        }
        stopping = False

        def stop(*_: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        self.stderr.write(f"Prorata at http://{options['bind']}/ with its worker; Ctrl-C stops both.")
        first_status = 0
        while not stopping:
            ended = [(name, child.poll()) for name, child in children.items()
                     if child.poll() is not None]
            if ended:
                name, first_status = ended[0]
                self.stderr.write(f"The {name} exited ({first_status}): stopping the other.")
                break
            time.sleep(0.2)
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for child in children.values():
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if first_status:
            sys.exit(first_status if first_status > 0 else 1)
