"""The objects webhook events carry in ``data`` (docs/webhooks.md lists their fields).

Built from plain attributes, so that the ORM's rows and the billing run's built rows give the
same object: a document from a :class:`~prorata.billing.models.Document` or a
:class:`~prorata.billing.writer.DocumentHead` with its id and number, its lines from
``DocumentLine`` rows or ``LineRow`` tuples (the same field names). Amounts are integer minor
units of ``currency``; instants ISO 8601 UTC strings (``2026-03-11T00:00:00Z``); ids integers.
Field names are stable: a receiver may rely on them within an API version.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

from prorata.common.clock import format_instant

#: :func:`format_instant`, remembered: a billing run's chunk formats the same few instants.
_instant = lru_cache(maxsize=4096)(format_instant)


def _when(value: datetime | None) -> str | None:
    return _instant(value) if value is not None else None


def document_object(*, document_id: int, number: str, head: Any,
                    lines: Iterable[Any] = ()) -> dict[str, Any]:
    """An invoice or a credit note: ``head`` has the fields of
    :class:`~prorata.billing.writer.DocumentHead` (a ``Document`` has them too)."""
    return {
        "object": "invoice" if head.kind == "invoice" else "credit_note",
        "id": document_id,
        "number": number,
        "account_id": head.account_id,
        "status": head.status,
        "currency": head.currency,
        "subtotal": head.subtotal,
        "tax": head.tax,
        "total": head.total,
        "credit_applied": head.credit_applied,
        "amount_paid": head.amount_paid,
        "amount_due": head.amount_due,
        "issued_at": _when(head.issued_at),
        "due_at": _when(head.due_at),
        "paid_at": _when(head.paid_at),
        "order_id": head.order_id,
        "refers_to_id": head.refers_to_id,
        "lines": [
            {"kind": line.kind, "description": line.description,
             "subscription_id": line.subscription_id, "plan": line.plan_code,
             "cycle": line.cycle_code, "quantity": line.quantity,
             "period_start": _when(line.period_start), "period_end": _when(line.period_end),
             "amount": line.amount, "tax": line.tax}
            for line in sorted(lines, key=lambda line: line.position)
        ],
    }


def subscription_object(subscription: Any) -> dict[str, Any]:
    """A subscription (its product, plan and cycle loaded, or read here)."""
    return {
        "object": "subscription",
        "id": subscription.pk,
        "account_id": subscription.account_id,
        "product": subscription.product.code,
        "plan": subscription.plan.code,
        "cycle": subscription.cycle.code,
        "quantity": subscription.quantity,
        "currency": subscription.currency,
        "unit_amount": subscription.unit_amount,
        "status": subscription.status,
        "auto_renew": subscription.auto_renew,
        "period_start": _when(subscription.period_start),
        "period_end": _when(subscription.period_end),
        "created_at": _when(subscription.created_at),
    }


def payment_object(payment: Any) -> dict[str, Any]:
    return {
        "object": "payment",
        "id": payment.pk,
        "account_id": payment.account_id,
        "invoice_id": payment.invoice_id,
        "method": payment.method,
        "amount": payment.amount,
        "currency": payment.currency,
        "status": payment.status,
        "attempt": payment.attempt,
        "failure_code": payment.failure_code,
        "message": payment.message,
        "created_at": _when(payment.created_at),
        "completed_at": _when(payment.completed_at),
    }


def refund_object(refund: Any) -> dict[str, Any]:
    return {
        "object": "refund",
        "id": refund.pk,
        "account_id": refund.account_id,
        "payment_id": refund.payment_id,
        "amount": refund.amount,
        "currency": refund.currency,
        "status": refund.status,
        "memo": refund.memo,
        "created_at": _when(refund.created_at),
    }


def customer_object(account: Any) -> dict[str, Any]:
    return {
        "object": "customer",
        "id": account.pk,
        "name": account.name,
        "country": account.country,
        "currency": account.currency,
        "vat_number": account.vat_number,
        "billing_mode": account.billing_mode,
        "billing_email": account.billing_email,
        "language": account.language,
        "created_at": _when(account.created_at),
    }


def license_object(*, assignment_id: int, account_id: int, subscription: Any, member: Any,
                   assigned_at: datetime | None) -> dict[str, Any]:
    """A license of ``subscription`` held by ``member`` (a membership, its user loaded)."""
    return {
        "object": "license",
        "id": assignment_id,
        "account_id": account_id,
        "subscription_id": subscription.pk,
        "product": subscription.product.code,
        "member_id": member.pk,
        "user_id": member.user_id,
        "email": member.user.email,
        "assigned_at": _when(assigned_at),
    }


def entitlement_object(*, account_id: int, subscription: Any, member: Any, entitled: bool,
                       reason: str) -> dict[str, Any]:
    """Whether ``member`` may now use ``subscription``'s product, and why it changed
    (``license_assigned``, ``license_unassigned``, ``member_removed``, ``licenses_reduced``…)."""
    return {
        "object": "entitlement",
        "account_id": account_id,
        "subscription_id": subscription.pk,
        "product": subscription.product.code,
        "member_id": member.pk,
        "user_id": member.user_id,
        "email": member.user.email,
        "entitled": entitled,
        "reason": reason,
    }
