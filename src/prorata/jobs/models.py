"""The billing run's own record: one row per subscription period it renewed.

``Renewal`` is the exactly-once rule of the billing run (issue 5): the unique constraint on
(subscription, period_start) means a period is invoiced once, whatever crashes or concurrent runs
happen — a second attempt fails on the constraint and its transaction writes nothing. The row also
carries the dunning state of that period's invoice (attempts, next retry).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class RenewalStatus(models.TextChoices):
    #: Invoiced; a card payment attempt is pending (the charge step calls the gateway).
    CHARGING = "charging", _("charging")
    #: Settled: paid by card or by the account's credit.
    PAID = "paid", _("paid")
    #: Invoiced on payment terms (corporate account): paid later by bank transfer.
    INVOICED = "invoiced", _("invoiced, payment terms")
    #: The last attempt failed; another is due at ``next_attempt_at`` (dunning).
    RETRYING = "retrying", _("payment failed, retrying")
    #: The last attempt was not charged because the customer's bank asks them to authenticate it
    #: (3-D Secure, off session: nobody was there): they are e-mailed to do it on Pay now; the
    #: dunning schedule goes on meanwhile, another attempt due at ``next_attempt_at``.
    REQUIRES_ACTION = "requires_action", _("payment requires authentication")
    #: Every attempt failed: the subscription expired.
    FAILED = "failed", _("payment failed")


#: A renewal between two dunning attempts: Pay now may pay it, and the charge step tries it again
#: at its ``next_attempt_at``.
BETWEEN_ATTEMPTS: tuple[str, ...] = (RenewalStatus.RETRYING, RenewalStatus.REQUIRES_ACTION)


class Renewal(models.Model):
    """The renewal of ``subscription`` for ``[period_start, period_end)`` and how its invoice is
    being settled. Written by :mod:`prorata.jobs.billing_run` only. It is also the subscription's
    history entry for that period: the run writes no :class:`~prorata.subscriptions.models.SubscriptionEvent` repeating it."""

    # Indexed by the unique (subscription, period_start); the account is only ever read with the
    # invoice, whose index serves: neither needs an index of its own to maintain per renewal.
    subscription = models.ForeignKey(
        "subscriptions.Subscription", on_delete=models.PROTECT, related_name="renewals",
        db_index=False,
    )
    # A copy of the subscription's (and the invoice's) account, for partitioning and listing.
    # Both of those references are checked by the database; a constraint of its own would only
    # check that some account has this id, at the cost of one more lookup per renewal.
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="+",
                                db_index=False, db_constraint=False)
    period_start = models.DateTimeField(_("period start"))
    period_end = models.DateTimeField(_("period end"))
    invoice = models.ForeignKey("billing.Document", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(_("status"), max_length=16, choices=RenewalStatus.choices)
    #: Card attempts made so far (the first one included, and the customer's own on Pay now);
    #: dunning retries 1, 3 and 7 days after the first failure, whatever Pay now did meanwhile.
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    first_failed_at = models.DateTimeField(_("first failure"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("renewal")
        verbose_name_plural = _("renewals")
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period_start"], name="renewal_once_per_period"
            ),
        ]
        indexes = [
            # Only renewals waiting for a retry are looked up by time (a few among millions).
            models.Index(fields=["next_attempt_at", "id"],
                         condition=Q(status__in=["retrying", "requires_action"]),
                         name="renewal_retry_due"),
        ]

    def __str__(self) -> str:
        return f"Renewal of {self.subscription_id} from {self.period_start:%Y-%m-%d} ({self.status})"
