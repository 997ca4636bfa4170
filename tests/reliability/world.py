"""A small billing history for the reliability tests: every kind of row the invariants read.

Two customers (DESIGN §2 catalog, USD): Acme buys with a new card, changes (a credit line and a
new period), is renewed by the billing run, then its card declines until the subscription expires
(dunning, a void invoice and the credit note that voids it); Initech buys, takes licenses back
(account credit), gets credit from staff and a refund to its card from staff. Every e-mail is
then delivered.
"""

from __future__ import annotations

from dataclasses import dataclass

from prorata.accounts.models import Account, User
from prorata.billing.models import Document
from prorata.console.models import StaffRefundStatus
from prorata.console.services import credit_adjust, refund_request
from prorata.jobs.billing_run import bill_run
from prorata.notifications.outbox import outbox_deliver
from prorata.payments.models import PaymentMethod
from prorata.payments.services import payment_method_add
from prorata_core.money import Money
from prorata_core.periods import utc
from tests.app.subscriptions.support import DECLINED_CARD, buy, card, customer, staff


@dataclass
class History:
    acme: Account
    alice: User
    initech: Account
    carol: User
    agent: User
    purchase: Document  # Initech's first invoice, partly refunded


def history(clock) -> History:
    clock.set(utc(2026, 1, 1))
    acme, alice = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    agent = staff("agent@prorata.example", "support_agent")
    buy(acme, alice, "lite", "monthly", 5, card_token=card())
    clock.set(utc(2026, 1, 15))
    buy(acme, alice, "lite", "monthly", 7)
    clock.set(utc(2026, 2, 15))
    assert bill_run().renewed == 1
    PaymentMethod.objects.filter(account=acme).update(is_default=False,
                                                      removed_at=utc(2026, 2, 16))
    payment_method_add(account=acme, token=card(DECLINED_CARD), actor=alice)
    for day in (15, 16, 18, 22):
        clock.set(utc(2026, 3, day))
        bill_run()
    initech, carol = customer("Initech", "US", "carol@initech.example", currency="USD")
    purchase = buy(initech, carol, "lite", "monthly", 5, card_token=card()).invoice
    buy(initech, carol, "lite", "monthly", 2)
    credit_adjust(account=initech, amount=Money(500, "USD"), reason="Outage on 22 March",
                  actor=agent, idempotency_key="history-credit")
    refund = refund_request(invoice=purchase, amount=Money(1000, "USD"), reason="Goodwill",
                            actor=agent, idempotency_key="history-refund")
    assert refund.status == StaffRefundStatus.REFUNDED
    outbox_deliver(limit=1000)
    return History(acme, alice, initech, carol, agent, purchase)
