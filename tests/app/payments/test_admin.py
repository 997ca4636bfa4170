"""The console shows saved cards and the sandbox's records read-only, never a token."""

from __future__ import annotations

import pytest
from django.urls import reverse

from prorata.accounts.models import User
from prorata.accounts.services import account_create
from prorata.payments.sandbox import sandbox_token
from prorata.payments.services import payment_method_add
from tests.app.console_auth import console_login

pytestmark = pytest.mark.django_db


def test_staff_see_cards_read_only(client, clock):
    console_login(client, User.objects.create_superuser("ops@prorata.example", "pw"))
    account = account_create(name="Acme", country="US")
    method = payment_method_add(account=account, token=sandbox_token("4242424242424242"))
    listing = client.get(reverse("admin:payments_paymentmethod_changelist"))
    assert listing.status_code == 200 and b"4242" in listing.content
    detail = client.get(reverse("admin:payments_paymentmethod_change", args=[method.pk]))
    assert detail.status_code == 200 and method.token.encode() not in detail.content
    assert client.get(reverse("admin:payments_paymentmethod_add")).status_code == 403
    for name in ("sandboxcard", "sandboxcharge", "sandboxrefund"):
        assert client.get(reverse(f"admin:payments_{name}_changelist")).status_code == 200
