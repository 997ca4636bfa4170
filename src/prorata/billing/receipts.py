"""Receipts as PDF: every invoice and credit note, regenerated from its immutable snapshot.

The snapshot is the document as issued; only its payment state can move afterwards (a corporate
invoice paid later by transfer), so the PDF shows the snapshot with the current payment fields laid
over it. The e-mail attachments of the outbox use the same function (registered in
:class:`prorata.billing.apps.BillingConfig`).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from prorata.accounts.billing_details import account_time_zone
from prorata.billing.models import (
    CreditApplication,
    Document,
    DocumentKind,
    Payment,
    PaymentMethodKind,
    PaymentStatus,
)
from prorata.catalog.models import Plan
from prorata.common.clock import format_instant


def document_pdf_snapshot(document: Document) -> dict[str, Any]:
    """The snapshot the PDF is drawn from: as issued, with today's payment state, and the facts
    the PDF reads beside it (:mod:`prorata.billing.pdf`): each line's plan and billing period
    codes (from its immutable line row) so that its text is written in the reader's language,
    how the invoice was paid, where a credit note's amount went, the account's time zone (its
    billing details' choice, else its country's: :func:`account_time_zone`)."""
    if document.number is None:
        raise ValueError(f"{document} is a draft: only finalised documents have a PDF.")
    snapshot: dict[str, Any] = {
        **document.snapshot,
        "status": document.status,
        "amount_paid": document.amount_paid,
        "amount_due": document.amount_due,
        # grown since issue when credit created later paid part of it (billing.credit)
        "credit_applied": document.credit_applied,
        "time_zone": account_time_zone(document.account),
    }
    snapshot["lines"] = _lines(document, snapshot.get("lines") or [])
    if document.kind == DocumentKind.INVOICE:
        snapshot["payments"] = _payments(document)
        snapshot["credit_settled"] = [
            {"amount": row.amount, "at": format_instant(row.at),
             "credit_note": row.credit_note.number if row.credit_note else ""}
            for row in CreditApplication.objects.filter(invoice=document)
            .select_related("credit_note").order_by("at", "id")]
    else:
        snapshot.update(_credit_destination(document))
    return snapshot


def _lines(document: Document, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = {row.position: row for row in document.lines.all()}
    names = dict(Plan.objects.filter(code__in={row.plan_code for row in rows.values()})
                 .values_list("code", "name"))
    enriched = []
    for position, line in enumerate(lines, start=1):
        row = rows.get(position)
        if row is not None and row.plan_code in names and "plan_code" not in line:
            line = {**line, "plan_code": row.plan_code, "cycle_code": row.cycle_code,
                    "plan_name": names[row.plan_code], "kind": line.get("kind") or row.kind}
        enriched.append(line)
    return enriched


def _payments(document: Document) -> list[dict[str, Any]]:
    """The succeeded payments of an invoice: its own, or its order's (a checkout pays the order)."""
    own = Q(invoice=document)
    if document.order_id is not None:
        own |= Q(invoice__isnull=True, order_id=document.order_id)
    payments = (Payment.objects.filter(own, status=PaymentStatus.SUCCEEDED)
                .select_related("payment_method").order_by("created_at", "id"))
    return [{
        "method": payment.method,
        "brand": payment.payment_method.brand if payment.payment_method else "",
        "last4": payment.payment_method.last4 if payment.payment_method else "",
        "reference": payment.reference if payment.method == PaymentMethodKind.BANK_TRANSFER
        else "",
        "at": format_instant(payment.completed_at or payment.created_at),
        "amount": payment.amount,
    } for payment in payments]


def _credit_destination(document: Document) -> dict[str, Any]:
    """Where a credit note's amount went: the invoice of the same order took it first (up to
    that invoice's credit applied, shared in numbering order between the order's credit notes),
    the rest stayed on the account's balance, used first on the next payment (S8)."""
    amount = -document.total
    applied: list[dict[str, Any]] = []
    if document.order_id is not None:
        invoice = Document.objects.filter(order_id=document.order_id, kind=DocumentKind.INVOICE,
                                          number__isnull=False).first()
        if invoice is not None and invoice.credit_applied > 0:
            earlier = sum(-note.total for note in Document.objects.filter(
                order_id=document.order_id, kind=DocumentKind.CREDIT_NOTE,
                sequence__lt=document.sequence))
            share = max(0, min(amount, invoice.credit_applied - earlier))
            if share:
                applied.append({"number": invoice.number, "amount": share})
    # then the open invoices it paid later (billing.credit), oldest first
    applied += [{"number": row.invoice.number, "amount": row.amount}
                for row in CreditApplication.objects.filter(credit_note=document)
                .select_related("invoice").order_by("at", "id")]
    used = sum(item["amount"] for item in applied)
    return {"credit_applied_to": applied, "kept_as_credit": max(amount - used, 0)}


def document_filename(document: Document) -> str:
    prefix = "invoice" if document.kind == DocumentKind.INVOICE else "credit-note"
    return f"{prefix}-{document.number}.pdf"


def document_pdf(*, document: Document, language: str) -> tuple[str, bytes]:
    """``(file name, PDF bytes)`` of a finalised document in ``language`` ("en" or "fr")."""
    from prorata.billing.pdf import render_document_pdf

    return document_filename(document), render_document_pdf(
        document_pdf_snapshot(document), language
    )


def _renderer(kind: str) -> Any:
    def render(document_id: int, language: str) -> tuple[str, bytes]:
        document = Document.objects.get(pk=document_id, kind=kind)
        return document_pdf(document=document, language=language)

    render.__name__ = f"render_{kind}"
    return render


def register_attachment_renderers() -> None:
    """Let the outbox attach invoices and credit notes (``{"kind": ..., "id": ...}``)."""
    from prorata.notifications.outbox import register_attachment_renderer

    for kind in (DocumentKind.INVOICE, DocumentKind.CREDIT_NOTE):
        register_attachment_renderer(kind.value, _renderer(kind.value))
