"""Acme as the issue's demo has it: alice (billing contact), bob (admin), carol (organizer),
Standard annual × 2 bought on 2026-01-01."""

from __future__ import annotations

from dataclasses import dataclass

from prorata.accounts.models import Membership, User
from prorata.subscriptions.models import Subscription
from tests.app.web.billing_support import World, acme_world, member


@dataclass
class Acme:
    world: World
    alice: User
    bob: User
    carol: User

    @property
    def account(self):
        return self.world.account

    @property
    def subscription(self) -> Subscription:
        return Subscription.objects.get(account=self.account)

    def membership(self, user: User) -> Membership:
        return Membership.objects.get(account=self.account, user=user)

    def client(self, user: User):
        return self.world.client(user)


def acme(clock) -> Acme:
    world = acme_world(clock)
    bob = member(world, "bob@acme.example", admin=True)
    carol = member(world, "carol@acme.example", organizer=True)
    return Acme(world, world.user, bob, carol)
