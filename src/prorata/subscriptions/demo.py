"""The demo's subscriptions (the billing-center issue's demo data), bought through the services.

With the movable clock, each purchase is made at its start instant by moving the project clock
there, so that every row (order, invoice, payment, ledger entry, e-mail) is what the services write
at that instant and the books balance; the clock is then put back where it was (2026-03-11 in the
demo). Nothing is written by hand.

- **Acme** (US, USD, no tax): Standard annual × 2 from 2026-01-01, paid by card: 2,376.00.
- **Globex** (corporate, Germany, reverse charge): Enterprise annual × 20 from 2026-02-01. Enterprise
  is advisor-priced, so its advisor places a *staff-priced order* (2,400.00 EUR per license per year,
  48,000.00 in all) rather than a catalog price row: the catalog's prices are public, one per plan,
  cycle and currency, while an advisor's offer belongs to one account; the subscription keeps the
  negotiated price for later license changes and renewals, and the audit log names the advisor. The
  invoice (net 30) is paid by bank transfer on 2026-02-20, recorded by the advisor.
- **Bistro** (France, EUR, 20 % VAT): Lite monthly × 5 from 2026-03-01, paid by card: 275.00 + 55.00.

So DESIGN §3's examples 1 and 2 can be replayed in the browser: Acme's upgrade on 2026-04-01, and
Bistro's reduction to 3 licenses on 2026-03-11.
"""

from __future__ import annotations

from datetime import datetime

from prorata.accounts.models import Account, User
from prorata.billing.models import DocumentKind
from prorata.billing.services import invoice_record_payment
from prorata.common.clock import MOVABLE, clock_mode, clock_set, now
from prorata.payments.sandbox import sandbox_token
from prorata.payments.services import default_payment_method, payment_method_add
from prorata.subscriptions.models import Subscription
from prorata.subscriptions.selectors import order_quote
from prorata.subscriptions.services import checkout_place
from prorata_core.money import Money
from prorata_core.periods import utc

#: The sandbox's always-accepted test card (the demo runs on the sandbox gateway).
DEMO_CARD = "4242 4242 4242 4242"
#: Globex's negotiated Enterprise price per license per year (minor units of EUR).
GLOBEX_UNIT_AMOUNT = 240_000

#: (account, buyer's e-mail, staff?, start, plan, cycle, licenses, advisor's unit amount)
PURCHASES = [
    ("Acme Corp", "alice@acme.example", False, utc(2026, 1, 1), "standard", "annual", 2, None),
    ("Globex", "advisor@prorata.example", True, utc(2026, 2, 1), "enterprise", "annual", 20,
     GLOBEX_UNIT_AMOUNT),
    ("Bistro Numérique", "jeanne@bistro.example", False, utc(2026, 3, 1), "lite", "monthly", 5,
     None),
]
GLOBEX_TRANSFER_AT = utc(2026, 2, 20)


def demo_load_subscriptions() -> list[str]:
    """Buy the demo subscriptions (idempotent: an account that has one is left alone); return the
    lines to print. Needs the movable clock and the demo's people (``demo_load_people``)."""
    if clock_mode() != MOVABLE:
        return ["Subscriptions: skipped (the demo's purchases are dated; set PRORATA_CLOCK=movable)."]
    lines = ["Subscriptions:"]
    back_to = now()
    try:
        for name, email, staff, start, plan, cycle, quantity, unit_amount in PURCHASES:
            lines.append(_purchase(name, email, staff, start, plan, cycle, quantity, unit_amount))
    finally:
        clock_set(instant=back_to)
    return lines


def _purchase(
    name: str, email: str, staff: bool, start: datetime, plan: str, cycle: str, quantity: int,
    unit_amount: int | None,
) -> str:
    account = Account.objects.filter(name=name).first()
    buyer = User.objects.filter(email__iexact=email).first()
    if account is None or buyer is None:
        return f"  {name}: skipped (load the demo's people first)"
    existing = Subscription.objects.filter(account=account, product__code="webinar").first()
    if existing is not None:
        return f"  {name}: {existing.plan.name} {existing.cycle.code} × {existing.quantity} (kept)"
    clock_set(instant=start)
    if not staff and default_payment_method(account=account) is None:
        payment_method_add(account=account, token=sandbox_token(DEMO_CARD), actor=buyer)
    quote = order_quote(account=account, user=buyer, product_code="webinar", plan_code=plan,
                        cycle_code=cycle, quantity=quantity, by_staff=staff,
                        unit_amount=unit_amount)
    result = checkout_place(
        account=account, user=buyer, idempotency_key=f"demo:{account.pk}:{start:%Y-%m-%d}",
        expected=[quote.fingerprint], items=[quote.item], by_staff=staff,
    )
    invoice = result.invoice
    if invoice is None or invoice.kind != DocumentKind.INVOICE:
        return f"  {name}: the purchase is still being confirmed"
    if invoice.amount_due:
        clock_set(instant=GLOBEX_TRANSFER_AT)
        invoice_record_payment(invoice=invoice, amount=Money(invoice.amount_due, invoice.currency),
                               reference="DEMO-TRANSFER-0001", actor=buyer)
    total = Money(invoice.total, invoice.currency)
    return (f"  {name}: {quote.order.configuration.describe()} from {start:%Y-%m-%d}, "
            f"invoice {invoice.number} ({total}) paid")
