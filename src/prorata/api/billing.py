"""API area "billing": invoices and credit notes (with their PDF) and the account's transactions.

Documents are the finalised ones only (drafts have no number and are never shown); their lines
and totals come from the immutable snapshot taken when they were numbered, their payment state
from the row. Lists (documents, transactions) answer one envelope, ``{"data", "has_more", "next_cursor"}``, in
keyset pages (DESIGN §8) with opaque cursors (:mod:`prorata.api.pagination`), never a total count.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from ninja import Query, Router, Schema
from pydantic import Field

from prorata.accounts.permissions import Action, account_for
from prorata.api import examples
from prorata.api.auth import ApiRequest
from prorata.api.money import MoneyOut, Out, money
from prorata.api.operator import documented
from prorata.api.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Page,
    cursor_decode,
    cursor_encode,
    page_of,
)
from prorata.api.schemas import errors
from prorata.api.selectors import documents_page
from prorata.billing.export import history_csv
from prorata.billing.history import STATUSES
from prorata.billing.models import Document, DocumentKind, LedgerEntry, LedgerKind
from prorata.billing.receipts import document_pdf
from prorata.billing.selectors import document_for_account, transactions_for_account
from prorata.common.clock import instant_from_json
from prorata_core.errors import ValidationError

router = Router(tags=["billing"])

PDF_LANGUAGES = ("en", "fr")


def _pdf_url(document_id: int, account_id: int) -> str:
    return reverse("api-v1:invoice_pdf", kwargs={"account_id": account_id,
                                                 "document_id": document_id})


class DocumentOut(Out):
    """An invoice or a credit note (``kind``) as issued. A credit note's amounts are negative and
    ``refers_to`` is the number of the invoice it corrects. For an invoice,
    ``amount_due = total − credit_applied − amount_paid``."""

    id: int
    kind: str
    number: str
    status: str
    issued_at: datetime
    due_at: datetime | None
    paid_at: datetime | None
    refers_to: str | None
    currency: str
    subtotal: MoneyOut
    tax: MoneyOut
    total: MoneyOut
    credit_applied: MoneyOut
    amount_paid: MoneyOut
    amount_due: MoneyOut
    tax_rule: str
    tax_mention: str
    pdf_url: str

    @staticmethod
    def of(document: Document, pdf_url: str | None = None) -> DocumentOut:
        """``pdf_url``: where the caller downloads it (default: the account's route)."""
        currency = document.currency
        return DocumentOut(
            id=document.pk, kind=document.kind, number=document.number or "",
            status=document.status, issued_at=document.issued_at, due_at=document.due_at,
            paid_at=document.paid_at, refers_to=document.snapshot.get("refers_to"),
            currency=currency, subtotal=money(document.subtotal, currency),
            tax=money(document.tax, currency), total=money(document.total, currency),
            credit_applied=money(document.credit_applied, currency),
            amount_paid=money(document.amount_paid, currency),
            amount_due=money(document.amount_due, currency), tax_rule=document.tax_rule,
            tax_mention=document.tax_mention,
            pdf_url=pdf_url or _pdf_url(document.pk, document.account_id),
        )


class DocumentLineOut(Out):
    kind: str
    description: str
    period_start: datetime
    period_end: datetime
    quantity: int
    unit_amount: MoneyOut
    ratio: str = Field(description="The exact proration ratio, 'numerator/denominator'.")
    amount: MoneyOut
    tax_rate_bp: int
    tax: MoneyOut


class DocumentDetailOut(DocumentOut):
    """A document with its lines, seller and buyer, exactly as issued."""

    lines: list[DocumentLineOut]
    seller: dict[str, Any]
    buyer: dict[str, Any]

    @staticmethod
    def of(document: Document, pdf_url: str | None = None  # type: ignore[override]
           ) -> DocumentDetailOut:
        snapshot = document.snapshot
        currency = document.currency
        lines = [
            DocumentLineOut(
                kind=line["kind"], description=line["description"],
                period_start=instant_from_json(line["period_start"]),
                period_end=instant_from_json(line["period_end"]),
                quantity=line["quantity"], unit_amount=money(line["unit_amount"], currency),
                ratio=line["ratio"], amount=money(line["amount"], currency),
                tax_rate_bp=line["tax_rate_bp"], tax=money(line["tax"], currency),
            )
            for line in snapshot.get("lines", [])
        ]
        return DocumentDetailOut(
            **DocumentOut.of(document, pdf_url).model_dump(), lines=lines,
            seller=snapshot.get("seller", {}), buyer=snapshot.get("buyer", {}),
        )


class ListQuery(Schema):
    cursor: str | None = Field(None, description="The previous page's next_cursor (opaque).")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Rows per page.")


class DocumentsQuery(ListQuery):
    kind: str | None = Field(None, description="'invoice' or 'credit_note' (default: both)")


def documents_list(
    account: Any, *, kind: str | None, filters: ListQuery, scope: str,
    pdf_url: Callable[[Document], str] | None = None,
) -> dict[str, Any]:
    """One page of the account's finalised documents (``kind``: one of them, or both), newest
    issued first, in the list envelope; ``scope`` names the list its cursors belong to."""
    scope = f"{scope}:{account.pk}:{kind or ''}"
    after = cursor_decode(scope, filters.cursor) if filters.cursor else None
    rows = documents_page(account=account, kind=kind, after=after, limit=filters.limit)
    return page_of(rows, limit=filters.limit, scope=scope,
                   position=lambda d: (d.issued_at, d.pk),
                   out=lambda d: DocumentOut.of(d, pdf_url(d) if pdf_url else None))


@router.get("/accounts/{account_id}/invoices",
            response={200: Page[DocumentOut], **errors(401, 403, 404, 422)},
            summary="The account's invoices and credit notes, newest first (paginated)",
            openapi_extra=documented(Page[DocumentOut], examples.INVOICES_PAGE))
def invoices(request: ApiRequest, account_id: int,
             filters: Query[DocumentsQuery]) -> dict[str, Any]:
    """The list envelope: ``data``, ``has_more``, ``next_cursor`` (pass it as ``cursor``)."""
    account = account_for(request.auth_user, account_id, Action.VIEW_BILLING)
    if filters.kind not in (None, "", "invoice", "credit_note"):
        raise ValidationError("kind is 'invoice' or 'credit_note'.", kind=filters.kind)
    return documents_list(account, kind=filters.kind or None, filters=filters,
                          scope="account.documents")


def _document(account: Any, document_id: int) -> Document:
    document = document_for_account(account=account, document_id=document_id)
    if document is None:
        raise Http404("No such document")
    return document


@router.get("/accounts/{account_id}/invoices/{document_id}",
            response={200: DocumentDetailOut, **errors(401, 403, 404, 422)},
            summary="One invoice or credit note, with its lines",
            openapi_extra=documented(DocumentDetailOut, examples.INVOICE))
def invoice(request: ApiRequest, account_id: int, document_id: int) -> DocumentDetailOut:
    account = account_for(request.auth_user, account_id, Action.VIEW_BILLING)
    return DocumentDetailOut.of(_document(account, document_id))


@router.get(
    "/accounts/{account_id}/invoices/{document_id}/pdf",
    response={**errors(401, 403, 404, 422)}, url_name="invoice_pdf",
    summary="One invoice or credit note as PDF",
    openapi_extra={"responses": {"200": {
        "description": "The PDF (Content-Disposition names the file)",
        "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"},
                                        "example": "%PDF-1.7 …"}},
    }}},
)
def invoice_pdf(
    request: ApiRequest, account_id: int, document_id: int,
    language: str | None = Query(None, description="'en' or 'fr' (default: the user's, then "
                                                    "the account's)"),
) -> HttpResponse:
    account = account_for(request.auth_user, account_id, Action.VIEW_BILLING)
    document = _document(account, document_id)
    language = language or request.auth_user.language or account.language
    if language not in PDF_LANGUAGES:
        raise ValidationError("language is 'en' or 'fr'.", language=language)
    filename, pdf = document_pdf(document=document, language=language)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- transactions (S10) -------------------------------------------------------------------------

class DocumentRef(Out):
    id: int
    kind: str
    number: str | None
    pdf_url: str


class TransactionOut(Out):
    """One money movement. ``amount`` is signed in the customer's favour: a charge (invoice) is
    negative, a payment or a credit positive, a refund paid out negative."""

    id: int
    at: datetime
    kind: str
    amount: MoneyOut
    memo: str
    document: DocumentRef | None

    @staticmethod
    def of(entry: LedgerEntry, account_id: int,
           pdf_url: Callable[[Document], str] | None = None) -> TransactionOut:
        document = entry.document
        return TransactionOut(
            id=entry.pk, at=entry.at, kind=entry.kind, amount=money(entry.amount, entry.currency),
            memo=entry.memo,
            document=None if document is None else DocumentRef(
                id=document.pk, kind=document.kind, number=document.number,
                pdf_url=pdf_url(document) if pdf_url else _pdf_url(document.pk, account_id)),
        )


class TransactionsQuery(Schema):
    kind: list[str] = Field(
        default_factory=list,
        description="Only these kinds (repeat or comma-separate): invoice (a charge), "
                    "credit_note (a credit), payment, refund.")
    start: datetime | None = Field(None, description="From this instant (inclusive).")
    end: datetime | None = Field(None, description="Before this instant (exclusive).")
    cursor: str | None = Field(None, description="The previous page's next_cursor (opaque).")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


def _kinds(values: list[str]) -> list[str]:
    kinds = [k.strip() for value in values for k in value.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(LedgerKind.values))
    if unknown:
        raise ValidationError(
            f"Unknown transaction kind(s): {', '.join(unknown)}; use "
            f"{', '.join(LedgerKind.values)}.", kind=unknown)
    return kinds


def transactions_list(
    account: Any, filters: TransactionsQuery, *, scope: str,
    pdf_url: Callable[[Document], str] | None = None,
) -> dict[str, Any]:
    """One page of the account's ledger, newest first, in the list envelope; the cursor is
    bound to the list (``scope``), the account and the filters."""
    kinds = sorted(set(_kinds(filters.kind)))
    scope = (f"{scope}:{account.pk}:{','.join(kinds)}:"
             f"{filters.start.isoformat() if filters.start else ''}:"
             f"{filters.end.isoformat() if filters.end else ''}")
    position = None
    if filters.cursor:
        at, pk = cursor_decode(scope, filters.cursor)
        position = f"{at.isoformat()}|{pk}"  # the selector's own (internal) position
    page = transactions_for_account(account=account, kinds=kinds or None, start=filters.start,
                                    end=filters.end, cursor=position, limit=filters.limit)
    entries = page.entries
    more = page.next_cursor is not None and bool(entries)
    return {
        "data": [TransactionOut.of(e, account.pk, pdf_url) for e in entries],
        "has_more": more,
        "next_cursor": cursor_encode(scope, entries[-1].at, entries[-1].pk) if more else None,
    }


@router.get("/accounts/{account_id}/transactions",
            response={200: Page[TransactionOut], **errors(401, 403, 404, 422)},
            summary="The account's charges, payments, credits and refunds, newest first",
            openapi_extra=documented(Page[TransactionOut], examples.TRANSACTIONS_PAGE))
def transactions(
    request: ApiRequest, account_id: int, filters: Query[TransactionsQuery],
) -> dict[str, Any]:
    """The list envelope: ``data``, ``has_more``, ``next_cursor`` (opaque; pass it back as
    ``cursor`` with the same filters). No total count, by design (DESIGN §8)."""
    account = account_for(request.auth_user, account_id, Action.VIEW_BILLING)
    return transactions_list(account, filters, scope="account.transactions")


class HistoryExportQuery(Schema):
    kind: list[str] = Field(
        default_factory=list,
        description="Only these document types (repeat or comma-separate): invoice, credit_note.")
    status: list[str] = Field(
        default_factory=list,
        description="Only these statuses (repeat or comma-separate): paid, credit_applied, "
                    "refunded, open, void.")
    start: datetime | None = Field(None, description="Issued from this instant (inclusive).")
    end: datetime | None = Field(None, description="Issued before this instant (exclusive).")


def _choices(values: list[str], allowed: tuple[str, ...], what: str) -> list[str]:
    chosen = [v.strip() for value in values for v in value.split(",") if v.strip()]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown:
        raise ValidationError(f"Unknown {what}(s): {', '.join(unknown)}; use "
                              f"{', '.join(allowed)}.", **{what.replace(' ', '_'): unknown})
    return chosen


@router.get(
    "/accounts/{account_id}/transactions.csv",
    response={**errors(401, 403, 404, 422)},
    openapi_extra={"responses": {"200": {
        "description": "CSV, one row per invoice or credit note, newest first: issued_at, type, "
                       "number, status, currency, then amounts in major units (exact decimals)",
        "content": {"text/csv": {"schema": {"type": "string"}, "example": examples.HISTORY_CSV}}}}},
    summary="The account's invoices and credit notes as a CSV file, streamed",
)
def transactions_csv(
    request: ApiRequest, account_id: int, filters: Query[HistoryExportQuery],
) -> StreamingHttpResponse:
    account = account_for(request.auth_user, account_id, Action.VIEW_BILLING)
    kinds = _choices(filters.kind, tuple(DocumentKind.values), "document type")
    statuses = _choices(filters.status, STATUSES, "status")
    response = StreamingHttpResponse(
        history_csv(account=account, kinds=kinds or None, statuses=statuses or None,
                    start=filters.start, end=filters.end),
        content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="transactions-{account.pk}.csv"'
    return response
