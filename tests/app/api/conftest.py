"""People and accounts for the API tests, and a client that speaks the API with a token."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from prorata.accounts.models import Account, User
from prorata.accounts.services import account_create, membership_set_roles
from prorata.api.services import api_token_create


@dataclass
class World:
    a: Account
    b: Account
    alice: User  # billing contact of A
    bob: User  # admin of A
    pat: User  # member of A without a role
    bea: User  # billing contact of B


@pytest.fixture
def world(clock) -> World:
    a = account_create(name="Acme", country="US", billing_address="1 Road", vat_number="")
    b = account_create(name="Bistro", country="FR")
    users = {}
    for email, account, roles in [
        ("alice@acme.example", a, {"billing_contact": True}),
        ("bob@acme.example", a, {"admin": True}),
        ("pat@acme.example", a, {}),
        ("bea@bistro.example", b, {"billing_contact": True}),
    ]:
        users[email] = User.objects.create_user(email, "pw")
        membership_set_roles(actor=None, account=account, user=users[email], **roles)
    return World(a, b, users["alice@acme.example"], users["bob@acme.example"],
                 users["pat@acme.example"], users["bea@bistro.example"])


class ApiClient:
    """Calls the API with ``Authorization: Bearer <token>``; ``.json`` on the response is parsed."""

    def __init__(self, token: str | None = None, client: Client | None = None) -> None:
        self.client = client or Client()
        self.token = token

    def _headers(self) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, **extra: Any):
        return self.client.get(path, **self._headers(), **extra)

    def delete(self, path: str, **extra: Any):
        return self.client.delete(path, **self._headers(), **extra)

    def post(self, path: str, data: Any = None, **extra: Any):
        return self.client.post(path, json.dumps(data or {}), content_type="application/json",
                                **self._headers(), **extra)


def token_for(user: User, name: str = "script", **kwargs: Any) -> str:
    return api_token_create(user=user, name=name, **kwargs)[1]


@pytest.fixture
def as_alice(world) -> ApiClient:
    return ApiClient(token_for(world.alice))
