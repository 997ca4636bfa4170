"""``prorata worker``: run every periodic job on its schedule, on this machine, until stopped.

The scheduler for a deployment without a broker (:mod:`prorata.jobs.schedule`): e-mails leave within
seconds, the billing run starts hourly, and so on; SIGTERM or Ctrl-C stops it after the runs in
progress. With ``PRORATA_BROKER_URL`` set, Celery beat owns the schedule instead, and this command
refuses to start a second one. ``--once`` runs each job once and exits (for cron, or by hand).
"""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from prorata.jobs.schedule import Worker, broker_configured, job_named, periodic_jobs, run_job


class Command(BaseCommand):
    help = "Run the periodic jobs (e-mail delivery, billing run, dunning, reconciliation, pruning)."

    def add_arguments(self, parser: CommandParser) -> None:
        names = ", ".join(job.name for job in periodic_jobs())
        parser.add_argument("--only", action="append", default=[], metavar="JOB",
                            help=f"run only this job (repeatable); the jobs are {names}")
        parser.add_argument("--once", action="store_true",
                            help="run each job once, one after the other, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            jobs = (tuple(job_named(name) for name in options["only"]) if options["only"]
                    else periodic_jobs())
        except KeyError as error:
            raise CommandError(error.args[0]) from None
        if options["once"]:
            failed = [job.name for job in jobs if not run_job(job).ok]
            if failed:
                raise CommandError(f"These jobs failed (see the log): {', '.join(failed)}.")
            return
        if broker_configured():
            raise CommandError(
                "PRORATA_BROKER_URL is set, so Celery beat schedules the jobs: run "
                "'celery -A prorata.jobs.celery worker' and 'celery -A prorata.jobs.celery beat' "
                "instead (or unset PRORATA_BROKER_URL to use this worker).")
        from prorata.common.metrics import forget_dead_processes

        forget_dead_processes()
        worker = Worker(jobs)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: worker.stop())
        self.stderr.write(f"Worker running {', '.join(job.name for job in jobs)}; "
                          "Ctrl-C or SIGTERM stops it.")
        worker.run()
        self.stderr.write("Worker stopped.")
