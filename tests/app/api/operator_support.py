"""Operator API tests: keys, an HTTP client that sends one, and the operator staff member."""

from __future__ import annotations

import itertools
import json
from typing import Any

from django.contrib.auth.models import Group
from django.test import Client

from prorata.accounts.models import User
from prorata.api.models import OperatorKey
from prorata.api.services import operator_key_create

_keys = itertools.count(1)


def operator(email: str = "olga@prorata.example") -> User:
    """A staff member with the operator role (who creates keys in the console)."""
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email, "pw", is_staff=True)
        user.groups.set([Group.objects.get(name="operator")])
    return user


def key_for(scope: str = "read_write", name: str = "CRM backend") -> tuple[OperatorKey, str]:
    return operator_key_create(name=name, scope=scope, actor=operator())


class OperatorClient:
    """Calls the API with ``Authorization: Bearer <key>``; writes get a new Idempotency-Key
    unless one is given (``key=``)."""

    def __init__(self, secret: str | None, client: Client | None = None,
                 ip: str = "203.0.113.7") -> None:
        self.client = client or Client(REMOTE_ADDR=ip)
        self.secret = secret

    def _headers(self, key: str | None = None) -> dict[str, str]:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {self.secret}"} if self.secret else {}
        if key is not None:
            headers["HTTP_IDEMPOTENCY_KEY"] = key
        return headers

    def get(self, path: str, **extra: Any):
        return self.client.get(path, **self._headers(), **extra)

    def send(self, method: str, path: str, data: Any = None, *, key: str | None = "",
             raw: str | None = None, **extra: Any):
        if key == "":
            key = f"op-test-{next(_keys)}"
        body = raw if raw is not None else json.dumps({} if data is None else data)
        return getattr(self.client, method)(path, body, content_type="application/json",
                                            **self._headers(key), **extra)

    def post(self, path: str, data: Any = None, **kwargs: Any):
        return self.send("post", path, data, **kwargs)

    def patch(self, path: str, data: Any = None, **kwargs: Any):
        return self.send("patch", path, data, **kwargs)


NEW_CUSTOMER = {"name": "Acme SAS", "country": "FR", "language": "fr",
                "billing_address": "1 rue de Rivoli\n75001 Paris",
                "contact": {"email": "jane@acme.example"}}
