"""``prorata serve``: the production web server (gunicorn), static files included (WhiteNoise).

Replaces this process by a gunicorn master serving ``prorata.wsgi:application`` with ``--workers``
worker processes (default ``PRORATA_WEB_WORKERS``, else one per core;
:class:`prorata.common.webworker.InlineWorker`: one request at a time each, connections kept
alive). The master restarts a worker that dies, and:

- ``SIGHUP``: graceful restart: new workers start with the new code and settings, the old ones finish
  their requests (at most ``--graceful-timeout`` seconds) and exit; no request is refused;
- ``SIGTERM`` / Ctrl-C: graceful stop, the same way;
- each worker is replaced after about ``--max-requests`` requests (bounded memory).

Put it behind a TLS proxy (nginx, Caddy) on loopback; runserver is for development only.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections


def default_workers() -> int:
    """``PRORATA_WEB_WORKERS`` if set, else the machine's cores (a worker answers one request at
    a time: it uses one core while computing and waits on the database otherwise)."""
    return settings.PRORATA_WEB_WORKERS or (os.cpu_count() or 1)


#: The gunicorn worker ``prorata serve`` runs.
WORKER_CLASS = "prorata.common.webworker.InlineWorker"


def gunicorn_argv(*, bind: str, workers: int, timeout: int, graceful_timeout: int,
                  max_requests: int) -> list[str]:
    """The gunicorn command line :class:`Command` runs (printed by ``--dry-run``)."""
    return [
        sys.executable, "-m", "gunicorn", "prorata.wsgi:application",
        "--bind", bind, "--workers", str(workers),
        # One request at a time per worker, as a sync worker, but connections are kept alive
        # between requests (sync workers close each one): the webinar product's backend asks the
        # entitlement endpoint over one connection, and a new TCP connection per request cost a
        # fifth of that endpoint's throughput. gthread's loop, without its hand-off of each
        # request to a pool thread (prorata.common.webworker; benchmarks/README.md, "Entitlement
        # endpoint").
        "--worker-class", WORKER_CLASS, "--threads", "1", "--keep-alive", "5",
        "--timeout", str(timeout), "--graceful-timeout", str(graceful_timeout),
        "--max-requests", str(max_requests), "--max-requests-jitter", str(max(max_requests // 10, 1)),
        # Requests are logged by the application itself (JSON, with their request id): no access
        # log (an access log sent to /dev/null is still formatted, request by request).
        "--error-logfile", "-",
        # Signals do what the control socket would; one shared socket path would clash between
        # two deployments on one machine.
        "--no-control-socket",
    ]


class Command(BaseCommand):
    help = "Serve Prorata in production with gunicorn (graceful restarts with SIGHUP)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default=os.environ.get("PRORATA_BIND", "127.0.0.1:8000"),
                            help="address:port or unix:PATH to listen on (default %(default)s, "
                                 "or PRORATA_BIND)")
        parser.add_argument("--workers", type=int, default=None,
                            help="worker processes (default: PRORATA_WEB_WORKERS, else one per "
                                 "core)")
        parser.add_argument("--timeout", type=int, default=60,
                            help="seconds a request may take before its worker is replaced")
        parser.add_argument("--graceful-timeout", type=int, default=30,
                            help="seconds the old workers get to finish on restart or stop")
        parser.add_argument("--max-requests", type=int, default=10000,
                            help="requests after which a worker is replaced (0: never)")
        parser.add_argument("--dry-run", action="store_true",
                            help="print the gunicorn command instead of running it")

    def handle(self, *args: Any, **options: Any) -> None:
        workers = options["workers"] if options["workers"] is not None else default_workers()
        if workers < 1:
            raise CommandError(f"--workers takes a count of at least 1, not {workers}.")
        for name in ("timeout", "graceful_timeout"):
            if options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} takes seconds, at least 1.")
        if options["max_requests"] < 0:
            raise CommandError("--max-requests takes a count, 0 or more.")
        try:
            import gunicorn  # noqa: F401
        except ImportError:
            raise CommandError("gunicorn is not installed: run 'make setup'.") from None
        argv = gunicorn_argv(bind=options["bind"], workers=workers, timeout=options["timeout"],
                             graceful_timeout=options["graceful_timeout"],
                             max_requests=options["max_requests"])
        if options["dry_run"]:
            self.stdout.write(" ".join(argv))
            return
        self.stdout.flush()
        self.stderr.flush()
        from prorata.common.metrics import forget_dead_processes

        forget_dead_processes()
        connections.close_all()  # nothing of this process's may leak into the server's
        os.execv(argv[0], argv)  # noqa: S606 - our own interpreter, our own arguments
