"""``/healthz``, ``/readyz`` and ``/metrics``: for a load balancer, systemd and Prometheus.

- ``/healthz``: the process answers (no database touched): ``{"status": "ok"}``.
- ``/readyz``: ready to serve: the database answers, every migration is applied, no e-mail has been
  due for longer than ``PRORATA_READY_OUTBOX_MAX_AGE`` (the worker is down, or the mail server
  refuses), and the broker answers when one is configured. 200 ``{"status": "ok"}`` or 503
  ``{"status": "unavailable"}``; which check failed is logged (WARNING), never shown: the public
  learns nothing about the installation.
- ``/metrics``: Prometheus text format, for a scraper sending ``Authorization: Bearer
  <PRORATA_METRICS_TOKEN>``; 404 while no token is configured, 401 without the right one.

All three need no sign-in and set no cookie; only GET and HEAD.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from prorata.common import metrics
from prorata.common.clock import now

logger = logging.getLogger(__name__)

#: Set once every migration was seen applied: they are not un-applied under a running server.
_migrated = False


@never_cache
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    failures = [name for name, check in _CHECKS if not _passes(name, check)]
    if failures:
        logger.warning("Not ready: %s", ", ".join(failures), extra={"failed_checks": failures})
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


def _passes(name: str, check) -> bool:  # type: ignore[no-untyped-def]
    try:
        return bool(check())
    except Exception as error:
        logger.warning("Readiness check %s raised %r", name, error)
        return False


def _database() -> bool:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


def _migrations() -> bool:
    global _migrated
    if not _migrated:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        _migrated = not executor.migration_plan(executor.loader.graph.leaf_nodes())
    return _migrated


def _outbox() -> bool:
    from prorata.notifications.models import OutboxMessage, OutboxStatus

    limit = now() - timedelta(seconds=settings.PRORATA_READY_OUTBOX_MAX_AGE)
    return not OutboxMessage.objects.filter(status=OutboxStatus.PENDING,
                                            next_attempt_at__lt=limit).exists()


def _broker() -> bool:
    from prorata.jobs.schedule import broker_configured

    if not broker_configured():
        return True
    from prorata.jobs.celery import app

    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=2)
    return True


_CHECKS = (("database", _database), ("migrations", _migrations), ("outbox", _outbox),
           ("broker", _broker))


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.PRORATA_METRICS_TOKEN
    if not token:
        return HttpResponse(status=404)
    sent = request.headers.get("Authorization", "")
    if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        response = HttpResponse("Send Authorization: Bearer <PRORATA_METRICS_TOKEN>.\n",
                                status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    from prometheus_client import CONTENT_TYPE_LATEST

    return HttpResponse(metrics.render([DatabaseCollector()]), content_type=CONTENT_TYPE_LATEST)


class DatabaseCollector(Collector):
    """What the database knows, read at scrape time: the outbox, charges and dunning states.
    Each is one grouped query on an indexed or small table."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from prorata.billing.models import Payment
        from prorata.jobs.models import Renewal
        from prorata.notifications.models import OutboxMessage, OutboxStatus

        at = now()
        outbox = GaugeMetricFamily("prorata_outbox_messages", "E-mails of the outbox by status",
                                   labels=["status"])
        counts = dict(OutboxMessage.objects.order_by().values_list("status")
                      .annotate(n=Count("id")))
        for status in OutboxStatus.values:
            outbox.add_metric([status], counts.get(status, 0))
        yield outbox
        oldest = (OutboxMessage.objects.filter(status=OutboxStatus.PENDING, next_attempt_at__lte=at)
                  .aggregate(oldest=Min("next_attempt_at"))["oldest"])
        yield GaugeMetricFamily(
            "prorata_outbox_oldest_due_seconds",
            "How long the longest-waiting due e-mail has been due (0: none waits)",
            value=(at - oldest).total_seconds() if oldest else 0.0)
        payments = GaugeMetricFamily("prorata_payments", "Payments (charges) by method and outcome",
                                     labels=["method", "status"])
        for method, status, n in (Payment.objects.order_by().values_list("method", "status")
                                  .annotate(n=Count("id"))):
            payments.add_metric([method, status], n)
        yield payments
        renewals = GaugeMetricFamily("prorata_renewals", "Renewals by dunning state",
                                     labels=["status"])
        for status, n in (Renewal.objects.order_by().values_list("status")
                          .annotate(n=Count("id"))):
            renewals.add_metric([status], n)
        yield renewals
