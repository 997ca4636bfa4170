"""Services and selectors for saved payment methods (DESIGN §1 S20): the only writers of
:class:`~prorata.payments.models.PaymentMethod`.

Every function takes the customer's ``account`` and only ever reads or writes that account's cards:
an id of another account's card is answered exactly like an id that does not exist
(:class:`~prorata.payments.errors.PaymentMethodNotFound`, HTTP 404). Writes are audited.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet

from prorata.accounts.models import Account, User
from prorata.accounts.services import audit_record
from prorata.common.clock import now
from prorata.payments.errors import CardNotForCorporate, PaymentMethodNotFound
from prorata.payments.gateway import TokenizedCard, get_gateway
from prorata.payments.models import PaymentMethod


def payment_method_add(
    *, account: Account, token: str, make_default: bool = True, actor: User | None = None
) -> PaymentMethod:
    """Exchange the single-use ``token`` of the gateway's card form for a reusable payment method
    and save it on ``account``; returns the saved method.

    The gateway is called before the transaction opens (a provider call must not hold row locks).
    Prorata never sees the card number or security code. The account's first card is its default
    even with ``make_default=False``. A bad, used or expired token raises
    :class:`~prorata.payments.errors.CardTokenInvalid` and saves nothing. A corporate account pays
    by bank transfer (S3, S14): :class:`~prorata.payments.errors.CardNotForCorporate`, before the
    gateway is called.
    """
    if account.is_corporate:
        advisor = account.advisor
        contact = (f"your advisor, {advisor.get_full_name() or advisor.email} ({advisor.email})"
                   if advisor is not None else "Corporate Billing")
        raise CardNotForCorporate(
            f"This account pays its invoices by bank transfer: no card is needed. Contact "
            f"{contact} with any question.", contact=contact)
    card = get_gateway().payment_method_create(token=token, at=now())
    return payment_method_save(account=account, card=card, make_default=make_default,
                               actor=actor)


def payment_method_save(
    *, account: Account, card: TokenizedCard, make_default: bool = True,
    actor: User | None = None,
) -> PaymentMethod:
    """Save a payment method the gateway already created (``card``) on ``account``: the checkout
    keeps the new card that has just paid this way."""
    with transaction.atomic():
        _lock(account)
        has_default = _active(account).filter(is_default=True).exists()
        is_default = make_default or not has_default
        if is_default and has_default:
            _active(account).filter(is_default=True).update(is_default=False)
        method = PaymentMethod.objects.create(
            account=account, token=card.token, brand=card.brand, last4=card.last4,
            exp_month=card.exp_month, exp_year=card.exp_year, is_default=is_default,
            created_at=now(),
        )
        audit_record(actor=actor, action="payment_method.add", account=account, obj=method,
                     after=_describe(method))
    return method


def payment_method_set_default(
    *, account: Account, payment_method_id: int, actor: User | None = None
) -> PaymentMethod:
    """Make one of ``account``'s saved cards its default (the one renewals charge)."""
    with transaction.atomic():
        _lock(account)
        method = _get(account, payment_method_id)
        if method.is_default:
            return method
        previous = _active(account).filter(is_default=True).first()
        if previous is not None:
            previous.is_default = False
            previous.save(update_fields=["is_default"])
        method.is_default = True
        method.save(update_fields=["is_default"])
        audit_record(
            actor=actor, action="payment_method.set_default", account=account, obj=method,
            before={"default": _describe(previous) if previous is not None else None},
            after={"default": _describe(method)},
        )
    return method


def payment_method_remove(
    *, account: Account, payment_method_id: int, actor: User | None = None
) -> None:
    """Remove a saved card from ``account``. Its row stays (past payments name it) but it is no
    longer offered or charged. If it was the default, the most recently added remaining card
    becomes the default, so that renewals keep a card to charge."""
    with transaction.atomic():
        _lock(account)
        method = _get(account, payment_method_id)
        was_default = method.is_default
        method.is_default = False
        method.removed_at = now()
        method.save(update_fields=["is_default", "removed_at"])
        successor = None
        if was_default:
            successor = _active(account).order_by("-created_at", "-id").first()
            if successor is not None:
                successor.is_default = True
                successor.save(update_fields=["is_default"])
        audit_record(
            actor=actor, action="payment_method.remove", account=account, obj=method,
            before=_describe(method) | {"is_default": was_default},
            after={"default": _describe(successor) if successor is not None else None},
        )


def payment_methods_for(*, account: Account) -> list[PaymentMethod]:
    """``account``'s saved cards (removed ones excluded), the default first, then newest first."""
    return list(_active(account).order_by("-is_default", "-created_at", "-id"))


def default_payment_method(*, account: Account) -> PaymentMethod | None:
    """The card renewals charge, or ``None`` when the account has none."""
    return _active(account).filter(is_default=True).first()


def _active(account: Account) -> QuerySet[PaymentMethod]:
    return PaymentMethod.objects.filter(account=account, removed_at__isnull=True)


def _lock(account: Account) -> None:
    # One lock per account serialises changes to its cards (so "one default" never races).
    Account.objects.select_for_update().filter(pk=account.pk).values_list("pk", flat=True).first()


def _get(account: Account, payment_method_id: int) -> PaymentMethod:
    try:
        method = _active(account).filter(pk=int(payment_method_id)).first()
    except (TypeError, ValueError):
        method = None
    if method is None:
        raise PaymentMethodNotFound(
            f"There is no saved card {payment_method_id} on this account; choose one of the "
            "account's saved cards, or add a new one.",
            payment_method_id=payment_method_id,
        )
    return method


def _describe(method: PaymentMethod) -> dict[str, object]:
    return {"id": method.pk, "brand": method.brand, "last4": method.last4,
            "expiry": method.expiry, "is_default": method.is_default}
