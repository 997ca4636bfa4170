"""Helpers for the webhook tests: the docs' receiver snippet, executed as written, and endpoints."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from prorata.accounts.models import User
from prorata.webhooks.events import EVENT_TYPES
from prorata.webhooks.services import webhook_endpoint_create

DOCS = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"


def receiver_snippet() -> SimpleNamespace:
    """The code block after ``<!-- receiver-snippet -->`` in docs/webhooks.md, executed: its
    ``verify_prorata_webhook`` and ``InvalidSignature``."""
    text = DOCS.read_text()
    found = re.search(r"<!-- receiver-snippet -->\s*```python\n(.*?)```", text, re.S)
    assert found, "docs/webhooks.md lost its receiver snippet"
    namespace: dict[str, object] = {}
    exec(compile(found.group(1), str(DOCS), "exec"), namespace)  # noqa: S102  (our own docs)
    return SimpleNamespace(**namespace)


def operator() -> User:
    from tests.app.subscriptions.support import staff

    found = User.objects.filter(email="operator@prorata.example").first()
    return found or staff("operator@prorata.example", "operator")


def endpoint(url: str, types: list[str] | None = None, actor: User | None = None):
    """An active endpoint of ``types`` (default: every type); returns (endpoint, secret)."""
    made = webhook_endpoint_create(actor=actor or operator(), url=url,
                                   event_types=types or sorted(EVENT_TYPES))
    return made.endpoint, made.secret
