"""Helpers of the billing center's page tests: the demo's customers bought through the services."""

from __future__ import annotations

from dataclasses import dataclass

from django.test import Client

from prorata.accounts.models import Account, User
from prorata.accounts.services import membership_set_roles
from prorata_core.periods import utc
from tests.app.subscriptions.support import buy, customer, save_card, staff


@dataclass
class World:
    account: Account
    user: User

    def client(self, user: User | None = None) -> Client:
        client = Client()
        client.force_login(user or self.user)
        return client

    @property
    def url(self) -> str:
        return f"/billing/{self.account.pk}/"


def acme_world(clock) -> World:
    """Acme: Standard annual × 2 from 2026-01-01, paid by card (DESIGN example 1's start). Its
    billing details chose UTC, the zone DESIGN's instants are written in (a US account's default,
    New York, reads 2026-04-01T00:00Z as March 31)."""
    clock.set(utc(2026, 1, 1))
    account, user = customer("Acme Corp", "US", "alice@acme.example", currency="USD",
                             time_zone="UTC")
    save_card(account, user)
    buy(account, user, "standard", "annual", 2)
    return World(account, user)


def bistro_world(clock) -> World:
    """Bistro: Lite monthly × 5 from 2026-03-01 with 20 % VAT (DESIGN example 2's start)."""
    clock.set(utc(2026, 3, 1))
    account, user = customer("Bistro Numérique", "FR", "jeanne@bistro.example", currency="EUR",
                             language="fr")
    save_card(account, user)
    buy(account, user, "lite", "monthly", 5)
    return World(account, user)


def globex_world(clock) -> World:
    """Globex: corporate, advised by Ada Advisor; Enterprise annual × 20 bought by the advisor."""
    clock.set(utc(2026, 2, 1))
    advisor = staff("advisor@prorata.example", "corporate_advisor")
    advisor.first_name, advisor.last_name = "Ada", "Advisor"
    advisor.save()
    account, user = customer("Globex", "DE", "hans@globex.example", currency="EUR",
                             vat_number="DE136695976", corporate_advisor=advisor)
    buy(account, advisor, "enterprise", "annual", 20, by_staff=True, unit_amount=240_000)
    return World(account, user)


def member(world: World, email: str, **roles: bool) -> User:
    user = User.objects.create_user(email, "pw")
    membership_set_roles(actor=None, account=world.account, user=user, **roles)
    return user
