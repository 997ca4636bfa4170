"""Invoices and credit notes, their numbering, the ledger, balances, payments and refunds.

Written only by :mod:`prorata.billing.services` (and the checkout in
:mod:`prorata.subscriptions.services`, through it). Every amount is an integer of minor units of the
row's ``currency``.

The ledger's sign convention is the customer's point of view: **positive is in the customer's
favour**. An invoice issued is ``−total``; a credit note issued is ``−total`` too, and its total is
negative (it is the engine's credit lines, which are negative), so the entry is positive; a payment
received is ``+amount``; a refund paid out is ``−amount``. An account's balance is the sum of its
entries: positive is credit the next invoice uses first (S8), negative is owed.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from prorata.accounts.models import Account


class ImmutableRecord(Exception):
    """A change to a finalised document or to an append-only ledger row."""


class DocumentKind(models.TextChoices):
    INVOICE = "invoice", _("invoice")
    CREDIT_NOTE = "credit_note", _("credit note")


class DocumentStatus(models.TextChoices):
    #: An invoice with an amount still due (corporate terms: paid later by bank transfer).
    OPEN = "open", _("open")
    #: Settled: an invoice fully paid (card, transfer, credit), or a credit note credited to the
    #: account's balance.
    PAID = "paid", _("paid")
    #: An invoice closed unpaid by the credit note that voids it (``refers_to``): nothing due.
    VOID = "void", _("void")


class Document(models.Model):
    """An invoice or a credit note (``kind``).

    One model for both: they share every column, one numbering routine, one immutability rule and
    one snapshot shape, and the customer's receipts list shows them together in one query; a credit
    note only adds ``refers_to``, the invoice whose period it corrects.

    ``number`` is null until the document is finalised; it is then assigned from the
    :class:`DocumentCounter` of (``series``, ``year``) in the finalising transaction (gapless,
    DESIGN §8) and, with ``snapshot``, the lines and the totals, never changes again: :meth:`save`
    refuses it. Only the payment fields (``status``, ``amount_paid``, ``amount_due``, ``paid_at``)
    move afterwards. ``snapshot`` is the document exactly as issued (seller, buyer, lines, totals);
    its PDF is regenerated from it.

    Totals: ``total = subtotal + tax`` (negative for a credit note); for an invoice,
    ``amount_due = total − credit_applied − amount_paid``.
    """

    #: What a finalised document may still change: its payment state. ``credit_applied`` grows
    #: when credit created later settles an invoice still open (:class:`CreditApplication`).
    PAYMENT_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"status", "amount_paid", "amount_due", "paid_at", "credit_applied"}
    )

    kind = models.CharField(_("kind"), max_length=16, choices=DocumentKind.choices)
    series = models.CharField(_("series"), max_length=8, blank=True, default="")
    year = models.PositiveSmallIntegerField(_("year"))
    sequence = models.PositiveIntegerField(_("sequence"), null=True, blank=True)
    # NULL until finalised (unique among the numbered ones: "" would collide); unique by
    # document_number_unique (a constraint: no second pattern-ops index to maintain).
    number = models.CharField(_("number"), max_length=32, null=True, blank=True)  # noqa: DJ001
    # Indexed by document_account_at, which starts with it: no index of its own to maintain.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="documents",
                                db_index=False)
    # Mostly empty (renewals have no order; invoices refer to nothing): partial indexes below.
    order = models.ForeignKey(
        "subscriptions.Order", null=True, blank=True, on_delete=models.PROTECT,
        related_name="documents", db_index=False,
    )
    refers_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes",
        verbose_name=_("corrects invoice"), db_index=False,
    )
    status = models.CharField(_("status"), max_length=8, choices=DocumentStatus.choices)
    issued_at = models.DateTimeField(_("issued at"))
    due_at = models.DateTimeField(_("due at"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3)
    subtotal = models.BigIntegerField(_("subtotal"))
    tax = models.BigIntegerField(_("tax"))
    total = models.BigIntegerField(_("total"))
    credit_applied = models.BigIntegerField(_("credit applied"), default=0)
    amount_paid = models.BigIntegerField(_("amount paid"), default=0)
    amount_due = models.BigIntegerField(_("amount due"), default=0)
    tax_rule = models.CharField(_("tax rule"), max_length=16)
    tax_mention = models.TextField(_("tax mention"), blank=True, default="")
    snapshot = models.JSONField(_("snapshot"), default=dict)

    class Meta:
        verbose_name = _("invoice or credit note")
        verbose_name_plural = _("invoices and credit notes")
        ordering = ["-issued_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["series", "year", "sequence"], name="document_sequence_unique"
            ),
            models.UniqueConstraint(fields=["number"], name="document_number_unique"),
            models.CheckConstraint(
                condition=Q(total=F("subtotal") + F("tax")), name="document_total_is_sum"
            ),
            # A void invoice (closed by the credit note that voids it) has nothing due.
            models.CheckConstraint(
                condition=Q(kind="credit_note")
                | Q(status="void", amount_due=0)
                | Q(amount_due=F("total") - F("credit_applied") - F("amount_paid")),
                name="document_invoice_amount_due",
            ),
            models.CheckConstraint(
                condition=Q(kind="invoice") | Q(refers_to__isnull=False, total__lte=0),
                name="document_credit_note_refers_to_invoice",
            ),
            models.CheckConstraint(
                condition=Q(number__isnull=True) | Q(sequence__isnull=False),
                name="document_number_has_sequence",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "issued_at", "id"], name="document_account_at"),
            models.Index(fields=["order"], condition=Q(order__isnull=False),
                         name="document_order"),
            models.Index(fields=["refers_to"], condition=Q(refers_to__isnull=False),
                         name="document_refers_to"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.number or '(draft)'}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        stored = getattr(self, "_stored", None)
        if stored is not None and stored.get("number") is not None:
            changed = {
                name for name, value in stored.items()
                if name not in self.PAYMENT_FIELDS and getattr(self, name) != value
            }
            if changed:
                raise ImmutableRecord(
                    f"{self} is finalised: only its payment state may change, not "
                    f"{', '.join(sorted(changed))}. Issue a credit note to correct it."
                )
        super().save(*args, **kwargs)
        self._remember()

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        if self.number is not None:
            raise ImmutableRecord(f"{self} is finalised and cannot be deleted.")
        return super().delete(*args, **kwargs)

    @property
    def is_final(self) -> bool:
        return self.number is not None

    @classmethod
    def from_db(cls, db: Any, field_names: Any, values: Any) -> Document:
        instance = super().from_db(db, field_names, values)
        instance._remember()
        return instance

    def _remember(self) -> None:
        # What was in the database when it was last read or written, to refuse changes once final.
        # Only loaded fields: reading a deferred one here would cost a query each.
        self._stored = {
            f.attname: self.__dict__[f.attname]
            for f in self._meta.concrete_fields
            if f.attname in self.__dict__
        }


class LineKind(models.TextChoices):
    CHARGE = "charge", _("charge")
    CREDIT = "credit", _("credit")


class DocumentLine(models.Model):
    """One line of a document, as the engine priced it (:class:`prorata_core.orders.OrderLine`).

    ``amount = round(unit_amount × quantity × ratio_numerator / ratio_denominator)`` (negative for
    a credit), ``tax = round(amount × tax_rate_bp / 10 000)``; the exact ratio is kept for audit.
    Lines are written once, with their document, in the issuing transaction; lines of a finalised
    document can be neither saved again nor deleted.
    """

    # Indexed by the unique (document, position): no index of its own to maintain.
    document = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="lines",
                                 db_index=False)
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=8, choices=LineKind.choices)
    description = models.CharField(max_length=300)
    subscription = models.ForeignKey(
        "subscriptions.Subscription", null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    plan_code = models.CharField(max_length=40)
    cycle_code = models.CharField(max_length=40)
    quantity = models.PositiveIntegerField()
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    unit_amount = models.BigIntegerField()
    ratio_numerator = models.BigIntegerField()
    ratio_denominator = models.BigIntegerField()
    amount = models.BigIntegerField()
    tax_rate_bp = models.PositiveIntegerField()
    tax = models.BigIntegerField()

    class Meta:
        ordering = ["document", "position"]
        constraints = [
            models.UniqueConstraint(fields=["document", "position"], name="document_line_position"),
            models.CheckConstraint(
                condition=Q(ratio_denominator__gt=0, ratio_numerator__gte=0),
                name="document_line_ratio_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.document.is_final:
            raise ImmutableRecord(f"The lines of {self.document} cannot change: it is finalised.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        if self.document.is_final:
            raise ImmutableRecord(f"The lines of {self.document} cannot change: it is finalised.")
        return super().delete(*args, **kwargs)


class DocumentCounter(models.Model):
    """The last number given in a (series, year): locked and incremented in the transaction that
    finalises a document, so numbers have no gaps (a database sequence would leave some)."""

    series = models.CharField(max_length=8, blank=True, default="")
    year = models.PositiveSmallIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["series", "year"], name="document_counter_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.series}{self.year}: {self.last}"


class PaymentStatus(models.TextChoices):
    #: Recorded before the gateway is called; still so while the call runs.
    PENDING = "pending", _("pending")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")
    #: The gateway did not answer: reconciled later by its idempotency key, never charged again.
    UNKNOWN = "unknown", _("unknown")
    #: The bank asks the customer to authenticate (3-D Secure) at ``Payment.action_url``: nothing
    #: charged yet; the answer is read by the idempotency key when they come back (or expire).
    #: ``completed_at`` empty: the customer is authenticating (an order's checkout, Pay now);
    #: set: an off-session attempt (a renewal) that ended there, nobody being present.
    REQUIRES_ACTION = "requires_action", _("requires authentication")


class PaymentMethodKind(models.TextChoices):
    CARD = "card", _("card")
    BANK_TRANSFER = "bank_transfer", _("bank transfer")


class Payment(models.Model):
    """Money received (or attempted) for an order or an invoice.

    ``idempotency_key`` is the key sent to the gateway (unique): asking the gateway again with it
    never charges twice. ``attempt`` counts the attempts for the same invoice (renewal retries).
    """

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="payments")
    # Empty for renewals: a partial index below.
    order = models.ForeignKey(
        "subscriptions.Order", null=True, blank=True, on_delete=models.PROTECT,
        related_name="payments", db_index=False,
    )
    invoice = models.ForeignKey(
        Document, null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    method = models.CharField(max_length=16, choices=PaymentMethodKind.choices)
    # Never looked up by card (cards are removed by a date, not deleted): no index to maintain.
    payment_method = models.ForeignKey(
        "payments.PaymentMethod", null=True, blank=True, on_delete=models.PROTECT,
        related_name="+", db_index=False,
    )
    method_label = models.CharField(_("paid with"), max_length=100, blank=True, default="")
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=PaymentStatus.choices)
    reference = models.CharField(_("gateway reference"), max_length=255, blank=True, default="")
    # Unique by payment_idempotency_key_unique (a constraint: one index, not two).
    idempotency_key = models.CharField(max_length=255)
    attempt = models.PositiveSmallIntegerField(default=1)
    failure_code = models.CharField(max_length=64, blank=True, default="")
    message = models.TextField(blank=True, default="")
    #: Where the customer authenticates a payment that ``requires_action`` (the gateway's page).
    # A database default too: the billing run's set-based writer inserts payments without it.
    action_url = models.CharField(max_length=1000, blank=True, default="", db_default="")
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.UniqueConstraint(fields=["idempotency_key"],
                                    name="payment_idempotency_key_unique"),
        ]
        indexes = [
            models.Index(fields=["order"], condition=Q(order__isnull=False), name="payment_order"),
            # The reconciliation job: payments still pending or unknown, oldest first.
            models.Index(
                fields=["created_at", "id"],
                condition=Q(status__in=["pending", "unknown"])
                | Q(status="requires_action", completed_at__isnull=True),
                name="payment_unsettled",
            ),
        ]

    def __str__(self) -> str:
        return f"Payment {self.pk}: {self.amount} {self.currency} ({self.status})"


class Refund(models.Model):
    """Money paid back to the customer on a payment (only staff issue refunds, S11)."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="refunds")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=PaymentStatus.choices)
    reference = models.CharField(max_length=255, blank=True, default="")
    idempotency_key = models.CharField(max_length=255, unique=True)
    memo = models.CharField(max_length=300, blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"Refund {self.pk}: {self.amount} {self.currency} ({self.status})"


class CreditApplication(models.Model):
    """Credit created on an account (``credit_note``'s) that settled ``amount`` (minor units, tax
    included) of an invoice issued earlier and still open, at ``at`` (issue 12: old debt is never
    offset silently). The invoice's ``credit_applied`` grew by ``amount``; the ledger has no row of
    its own for it: the credit note posted the credit, the invoice its charge, and the balance
    already nets them. The invoice's PDF, the credit note's "where it went" and the e-mail that
    announces the credit read these rows."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    credit_note = models.ForeignKey(Document, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="credit_applications")
    invoice = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="credit_settled")
    amount = models.BigIntegerField()
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="credit_application_positive"),
        ]

    def __str__(self) -> str:
        return f"Credit {self.amount} {self.currency} on document {self.invoice_id}"


class LedgerKind(models.TextChoices):
    INVOICE = "invoice", _("charge")
    CREDIT_NOTE = "credit_note", _("credit")
    PAYMENT = "payment", _("payment")
    REFUND = "refund", _("refund")


class LedgerEntry(models.Model):
    """One money movement on an account, append-only (a correction is a new entry).

    ``amount`` is signed, positive in the customer's favour (see the module's docstring). The
    stored :class:`AccountBalance` is updated in the same transaction as every entry.
    """

    # Indexed by ledger_account_at, which starts with it: no index of its own to maintain.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="ledger_entries",
                                db_index=False)
    currency = models.CharField(max_length=3)
    at = models.DateTimeField()
    kind = models.CharField(max_length=16, choices=LedgerKind.choices)
    amount = models.BigIntegerField()
    document = models.ForeignKey(
        Document, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    # Empty on invoice and credit entries: partial indexes below.
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries",
        db_index=False,
    )
    refund = models.ForeignKey(
        Refund, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries",
        db_index=False,
    )
    memo = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        verbose_name_plural = _("ledger entries")
        ordering = ["-at", "-id"]
        indexes = [
            # Keyset pages of an account's history, newest first (DESIGN §8).
            models.Index(fields=["account", "at", "id"], name="ledger_account_at"),
            models.Index(fields=["account", "kind", "at", "id"], name="ledger_account_kind_at"),
            models.Index(fields=["payment"], condition=Q(payment__isnull=False),
                         name="ledger_payment"),
            models.Index(fields=["refund"], condition=Q(refund__isnull=False),
                         name="ledger_refund"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d} {self.kind} {self.amount} {self.currency}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableRecord("The ledger is append-only: entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ImmutableRecord("The ledger is append-only: entries cannot be deleted.")


class AccountBalance(models.Model):
    """The sum of an account's ledger entries in one currency, kept with ``F()`` in the same
    transaction as each entry, so that reading a balance never sums the ledger (DESIGN §8)."""

    # Looked up by account through account_balance_unique, which starts with it: no index of its own.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="balances",
                                db_index=False)
    currency = models.CharField(max_length=3)
    balance = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "currency"], name="account_balance_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.account}: {self.balance} {self.currency}"
