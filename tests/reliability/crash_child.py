"""The processes the crash tests kill (``tests/reliability/test_crash_points.py``), besides the
``prorata`` commands they run as they are (``bill-run``, ``deliver-mail``).

``python -m tests.reliability.crash_child charge``: the billing run's charge step alone (what the
periodic ``dunning_retries`` job runs). ``… pay-now <account id> <user id> <invoice id>``: a billing contact's Pay now of a
past-due renewal's invoice. ``… checkout <account id> <user id> <key> <fingerprint>``:
the web checkout of one product (:data:`ITEM`: webinar, lite, monthly, 3 licenses) on the
account's default card, with idempotency key ``<key>``, of the quote the customer saw
(``<fingerprint>``), through the same service the checkout page calls. The environment
says which database (``DATABASE_URL``) and where to crash (``PRORATA_CRASH_AT``).
"""

from __future__ import annotations

import os
import sys

import django

#: What the crash tests' customers buy at checkout.
ITEM = ("webinar", "lite", "monthly", 3)


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prorata.settings.base")
    django.setup()
    action, *args = argv
    if action == "charge":
        from prorata.jobs.periodic import dunning_retries

        print(dunning_retries())
    elif action == "checkout":
        from prorata.accounts.models import Account, User
        from prorata.subscriptions.selectors import CheckoutItem
        from prorata.subscriptions.services import checkout_place

        account = Account.objects.get(pk=int(args[0]))
        user = User.objects.get(pk=int(args[1]))
        print(checkout_place(account=account, user=user, idempotency_key=args[2],
                             expected=[args[3]], items=[CheckoutItem(*ITEM)]).status)
    elif action == "pay-now":
        from prorata.accounts.models import Account, User
        from prorata.billing.renewals import renewal_pay_now

        account = Account.objects.get(pk=int(args[0]))
        user = User.objects.get(pk=int(args[1]))
        print(renewal_pay_now(account=account, user=user, invoice_id=int(args[2])).status)
    else:
        raise SystemExit(f"unknown action {action!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
