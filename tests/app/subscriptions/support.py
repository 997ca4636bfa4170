"""Helpers for the checkout tests: customers, cards, staff, and "quote then place" in one call."""

from __future__ import annotations

import itertools

from django.contrib.auth.models import Group

from prorata.accounts.models import Account, BillingMode, User
from prorata.accounts.services import account_create, membership_set_roles
from prorata.billing.models import Document, DocumentKind, LedgerEntry
from prorata.billing.queries import books_imbalances_sql
from prorata.billing.selectors import books_balance
from prorata.payments.sandbox import sandbox_token
from prorata.payments.services import payment_method_add
from prorata.subscriptions.selectors import order_quote
from prorata.subscriptions.services import CheckoutItem, CheckoutResult, checkout_place
from prorata_core.money import Money

GOOD_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"
NO_FUNDS_CARD = "4000 0000 0000 9995"
TIMEOUT_CARD = "4000 0000 0000 0119"

_keys = itertools.count(1)


def usd(text: str) -> Money:
    return Money.of(text, "USD")


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


def card(number: str = GOOD_CARD) -> str:
    """A single-use token of the sandbox's card form for ``number`` (as the browser gets it)."""
    return sandbox_token(number)


def customer(
    name: str, country: str, email: str, *, currency: str = "", language: str = "en",
    vat_number: str = "", corporate_advisor: User | None = None, time_zone: str = "",
) -> tuple[Account, User]:
    """An account with one billing contact; its time zone ``time_zone``, else its country's."""
    account = account_create(time_zone=time_zone,
        name=name, country=country, currency=currency, language=language, vat_number=vat_number,
        billing_mode=BillingMode.CORPORATE if corporate_advisor else BillingMode.SELF_SERVICE,
        advisor=corporate_advisor,
    )
    user = User.objects.create_user(email, "pw", first_name=name.split()[0])
    membership_set_roles(actor=None, account=account, user=user, billing_contact=True)
    return account, user


def staff(email: str, role: str) -> User:
    user = User.objects.create_user(email, "pw", is_staff=True)
    user.groups.set([Group.objects.get(name=role)])
    return user


def save_card(account: Account, user: User, number: str = GOOD_CARD) -> int:
    return payment_method_add(account=account, token=card(number), actor=user).pk


def key() -> str:
    return f"test-key-{next(_keys)}"


def buy(
    account: Account, user: User, plan: str, cycle: str, quantity: int, *,
    product: str = "webinar", idempotency_key: str | None = None, by_staff: bool = False,
    unit_amount: int | None = None, **options: object,
) -> CheckoutResult:
    """Quote one product, then place exactly that quote (what the checkout page does)."""
    quote = order_quote(account=account, user=user, product_code=product, plan_code=plan,
                        cycle_code=cycle, quantity=quantity, by_staff=by_staff,
                        unit_amount=unit_amount,
                        vat_number=options.get("vat_number"))  # type: ignore[arg-type]
    return checkout_place(
        account=account, user=user, idempotency_key=idempotency_key or key(),
        expected=[quote.fingerprint], by_staff=by_staff,
        items=[CheckoutItem(product, plan, cycle, quantity, unit_amount)],
        **options,  # type: ignore[arg-type]
    )


def assert_books_balance() -> None:
    """DESIGN §3: stored balances = ledger sums = documents and payments, both ways of checking."""
    assert books_balance() == []
    assert books_imbalances_sql() == []


def ledger_rows(account: Account) -> list[tuple[str, int]]:
    return list(LedgerEntry.objects.filter(account=account).order_by("at", "id")
                .values_list("kind", "amount"))


def numbers(kind: DocumentKind) -> list[str]:
    return list(Document.objects.filter(kind=kind, number__isnull=False).order_by("sequence")
                .values_list("number", flat=True))
