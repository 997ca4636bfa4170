"""What ends without renewal, before the billing run renews: expiries and overdue flags.

- :func:`expire_ended`: a subscription whose period has ended with its renewal cancelled (S2), or
  a free trial at its end (S16), expires, with a history event and an e-mail saying how to come
  back (Subscribe now).
- :func:`flag_overdue_corporate_invoices`: a corporate account's advisor hears once of an invoice
  on payment terms past its due date (S14); the subscription is not expired for a late transfer.

Who may call: :func:`~prorata.jobs.billing_run.bill_run`, each at the run's instant.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Mod

from prorata.accounts.models import BillingMode
from prorata.accounts.services import audit_record
from prorata.billing.models import Document, DocumentKind, DocumentStatus
from prorata.billing.services import notify_billing_contacts
from prorata.common.clock import format_instant
from prorata.common.db import JOB_ATTEMPTS, retry_transient
from prorata.notifications.context import money_json
from prorata.notifications.models import OutboxMessage
from prorata.subscriptions.models import Subscription, SubscriptionStatus
from prorata.subscriptions.transitions import subscription_transition
from prorata.webhooks.events import WebhookBatch
from prorata_core.lifecycle import Event, Status

if TYPE_CHECKING:
    from prorata.jobs.billing_run import RunStats


@retry_transient(attempts=JOB_ATTEMPTS)
def expire_ended(
    *, at: datetime, stats: RunStats, partition: tuple[int, int] | None = None,
    batch: int = 500,
) -> None:
    """Expire the subscriptions whose period has ended without renewal: a cancelled renewal (S2)
    and a free trial at its end (S16). Each gets a history event and an e-mail saying how to
    come back (Subscribe now); the card then offers Subscribe now."""
    ending = Subscription.objects.filter(period_end__lte=at).filter(
        Q(status=SubscriptionStatus.TRIALING)
        | Q(status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE], auto_renew=False)
    )
    if partition is not None:
        index, count = partition
        ending = ending.annotate(_part=Mod("account_id", count)).filter(_part=index)
    while True:
        with transaction.atomic():
            rows = list(
                (ending.select_for_update(skip_locked=True, of=("self",))
                 if connection.features.has_select_for_update_skip_locked else ending)
                .select_related("product", "account", "plan", "cycle")
                .order_by("period_end", "id")[:batch]
            )
            if not rows:
                return
            # The batch's webhook events (subscription.expired) go in one statement.
            webhooks = WebhookBatch()
            for subscription in rows:
                trial = subscription.status == SubscriptionStatus.TRIALING
                subscription_transition(subscription=subscription, to=Status.EXPIRED,
                                        event=Event.EXPIRED, at=at, before={},
                                        after={"trial": trial}, webhooks=webhooks)
                notify_billing_contacts(
                    account=subscription.account, template="subscription_expired",
                    dedupe_key=f"expired:{subscription.pk}:{format_instant(subscription.period_end)}",
                    context={"product": subscription.product.name, "trial": trial,
                             "period_end": format_instant(subscription.period_end),
                             "url": f"/billing/{subscription.account_id}/"},
                )
            webhooks.save()
            stats.expired += len(rows)


@retry_transient(attempts=JOB_ATTEMPTS)
def flag_overdue_corporate_invoices(*, at: datetime) -> int:
    """Tell each corporate account's advisor, once, about an invoice past its due date (S14): the
    subscription is not expired for a late bank transfer. Returns how many were flagged now."""
    from prorata.notifications.outbox import outbox_enqueue

    overdue = (
        Document.objects.filter(
            kind=DocumentKind.INVOICE, status=DocumentStatus.OPEN, due_at__lt=at,
            account__billing_mode=BillingMode.CORPORATE, account__advisor__isnull=False,
        )
        .select_related("account__advisor")
        .order_by("due_at", "id")
    )
    flagged = 0
    for invoice in overdue:
        advisor = invoice.account.advisor
        key = f"overdue:invoice:{invoice.pk}"
        with transaction.atomic():
            if OutboxMessage.objects.filter(dedupe_key=key).exists():
                continue
            outbox_enqueue(
                to=advisor.email, template="invoice_overdue", language=advisor.language or "en",
                dedupe_key=key,
                context={"number": invoice.number, "account": invoice.account.name,
                         "amount_due": money_json(invoice.amount_due, invoice.currency),
                         "due_at": format_instant(invoice.due_at),
                         "name": advisor.get_full_name() or advisor.email,
                         "url": f"/console/billing/document/{invoice.pk}/transfer/"},
            )
            audit_record(actor=None, action="invoice.overdue_flagged", account=invoice.account,
                         obj=invoice, after={"number": invoice.number,
                                             "due_at": format_instant(invoice.due_at)})
            flagged += 1
    return flagged
