"""Receipts as PDF: every invoice and credit note, regenerated from its immutable snapshot.

The snapshot is the document as issued; only its payment state can move afterwards (a corporate
invoice paid later by transfer), so the PDF shows the snapshot with the current payment fields laid
over it. The e-mail attachments of the outbox use the same function (registered in
:class:`prorata.billing.apps.BillingConfig`).
"""

from __future__ import annotations

from typing import Any

from prorata.billing.models import Document, DocumentKind


def document_pdf_snapshot(document: Document) -> dict[str, Any]:
    """The snapshot the PDF is drawn from: as issued, with today's payment state."""
    if document.number is None:
        raise ValueError(f"{document} is a draft: only finalised documents have a PDF.")
    return {
        **document.snapshot,
        "status": document.status,
        "amount_paid": document.amount_paid,
        "amount_due": document.amount_due,
    }


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
