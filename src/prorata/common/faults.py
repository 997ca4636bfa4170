"""Crash points: named places in the services and jobs where a test kills the process (issue 18).

``point("after_invoice")`` does nothing unless the environment variable ``PRORATA_CRASH_AT`` names
that point: ``name`` (its first hit in this process) or ``name:n`` (its n-th hit, n ≥ 1). Then the
process sends itself ``SIGKILL``, as the OOM killer or a power cut would: no ``finally``, no
``atexit``, no rollback but the database's own. The reliability suite
(``tests/reliability/test_crash_points.py``) crashes the billing run, its charge step, a checkout
and the e-mail relay at each point, starts everything again, and checks that nothing was lost or
done twice.

Test-only: production leaves ``PRORATA_CRASH_AT`` unset. The variable is read once per process, at
the first hit of any point, so a point costs one string comparison afterwards.

The points (:data:`POINTS`), in the order a charge meets them:

- ``after_lock``: the accounts locked (a billing-run chunk claimed; a checkout's first transaction);
- ``after_payment_row``: the pending payment written, not committed;
- ``after_invoice``: the invoice rows written, not committed;
- ``after_number``: the gapless numbers taken from the counter, not committed;
- ``after_outbox_row``: an e-mail queued in the business transaction, not committed;
- ``after_gateway_call``: the gateway answered (the card may be charged), nothing recorded yet;
- ``after_payment_commit``: the payment's outcome committed, before anything after it (the card
  saved, the next payment);
- ``relay_after_claim``: the relay claimed e-mails (their lease committed), none sent;
- ``relay_after_send``: an e-mail handed to the mail server, before it is marked sent (the one
  kill that sends an e-mail twice, with the same ``Message-ID``);
- ``relay_after_mark_sent``: an e-mail marked sent, before the next one.
"""

from __future__ import annotations

import os
import signal

from django.core.exceptions import ImproperlyConfigured

POINTS = frozenset({
    "after_lock", "after_payment_row", "after_invoice", "after_number", "after_outbox_row",
    "after_gateway_call", "after_payment_commit",
    "relay_after_claim", "relay_after_send", "relay_after_mark_sent",
})

#: The variable's value once read: ``None`` before the first hit, ``("", 0)`` when unset.
_target: tuple[str, int] | None = None
_hits = 0


def crash_target(value: str | None) -> tuple[str, int]:
    """``PRORATA_CRASH_AT``'s value read: ``(point, n)``, ``("", 0)`` when empty. Raises
    :class:`ImproperlyConfigured` for a point that does not exist or an n below 1."""
    text = (value or "").strip()
    if not text:
        return "", 0
    name, _, nth = text.partition(":")
    try:
        count = int(nth) if nth else 1
    except ValueError:
        count = 0
    if name not in POINTS or count < 1:
        raise ImproperlyConfigured(
            f"PRORATA_CRASH_AT={text!r} is not a crash point with an optional hit number: use "
            f"one of {', '.join(sorted(POINTS))}, optionally followed by :N (N ≥ 1).")
    return name, count


def point(name: str) -> None:
    """A crash point: kill this process (SIGKILL) if ``PRORATA_CRASH_AT`` names ``name`` and this
    is its n-th hit; otherwise nothing. Who may call: the services and jobs, at the places listed
    in the module docstring."""
    global _target, _hits
    if _target is None:
        _target = crash_target(os.environ.get("PRORATA_CRASH_AT"))
    if _target[0] != name:
        return
    _hits += 1
    if _hits >= _target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
