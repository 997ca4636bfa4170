"""Signing deliveries: HMAC-SHA256 over ``<timestamp>.<body>`` with the endpoint's secret.

The header (docs/webhooks.md has a receiver that checks it)::

    Prorata-Signature: t=1773187200,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

``t`` is the Unix time (seconds, the sender's real clock) the delivery was signed; each ``v1`` is
the lower-case hex HMAC-SHA256, keyed with the UTF-8 bytes of a secret, of the ASCII ``t``, a dot
and the exact body bytes. During a secret's rotation overlap the header carries two ``v1``, the
new secret's first: a receiver that knows either accepts it. A receiver refuses a ``t`` more than
:data:`TOLERANCE` seconds away from its own clock (a replayed capture).

``t`` is real time (:func:`time.time`), not the project clock: receivers compare it with their own
clocks, which a demo's movable clock would put months apart.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

HEADER = "Prorata-Signature"
#: Seconds a receiver accepts between ``t`` and its own clock, either way.
TOLERANCE = 300
SECRET_PREFIX = "whsec_"  # noqa: S105  (a prefix, not a secret)


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 43 URL-safe characters (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``<timestamp>.<body>`` keyed with ``secret``."""
    return hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def signature_header(signing_secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """The ``Prorata-Signature`` value: ``t=<timestamp>`` and one ``v1=`` per secret, in order."""
    return ",".join([f"t={timestamp}", *(f"v1={signature(secret, timestamp, body)}"
                                         for secret in signing_secrets)])
