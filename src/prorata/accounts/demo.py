"""The demo's people and accounts (DESIGN §3's worked examples, the accounts issue's list).

Idempotent: running it again resets the demo users' passwords and roles and creates nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group
from django.db import transaction

from prorata.accounts.models import Account, BillingMode, User
from prorata.accounts.services import account_create, membership_set_roles

DEMO_PASSWORD = "prorata-demo"  # noqa: S105 -- public by design: printed by `prorata demo` and README


@dataclass(frozen=True)
class DemoPerson:
    email: str
    first_name: str
    last_name: str
    language: str = ""
    staff_role: str | None = None


STAFF = [
    DemoPerson("support@prorata.example", "Sam", "Support", staff_role="support_agent"),
    DemoPerson("advisor@prorata.example", "Ada", "Advisor", staff_role="corporate_advisor"),
    DemoPerson("ops@prorata.example", "Oscar", "Operator", staff_role="operator"),
]

#: (account name, country, currency, language, corporate?, VAT number, [(person, roles)])
ACCOUNTS = [
    ("Acme Corp", "US", "USD", "en", False, "", [
        (DemoPerson("alice@acme.example", "Alice", "Anderson"), {"billing_contact": True}),
        (DemoPerson("bob@acme.example", "Bob", "Baker"), {"admin": True}),
        (DemoPerson("carol@acme.example", "Carol", "Chen"), {"organizer": True}),
    ]),
    ("Bistro Numérique", "FR", "EUR", "fr", False, "", [
        (DemoPerson("jeanne@bistro.example", "Jeanne", "Dupont", language="fr"),
         {"billing_contact": True, "admin": True, "organizer": True}),
    ]),
    ("Globex", "DE", "EUR", "en", True, "DE136695976", [
        (DemoPerson("hans@globex.example", "Hans", "Gruber", language="en"),
         {"billing_contact": True, "admin": True}),
    ]),
]  # fmt: skip


def _person(person: DemoPerson) -> User:
    user = User.objects.filter(email__iexact=person.email).first() or User(email=person.email)
    user.first_name, user.last_name, user.language = (
        person.first_name, person.last_name, person.language
    )
    user.is_staff = person.staff_role is not None
    user.is_active = True
    user.set_password(DEMO_PASSWORD)
    user.save()
    if person.staff_role:
        user.groups.set([Group.objects.get(name=person.staff_role)])
    return user


def demo_load_people() -> list[str]:
    """Create or reset the demo staff, accounts and members; return lines describing them."""
    lines = [f"People (password for everyone: {DEMO_PASSWORD}):"]
    with transaction.atomic():
        for person in STAFF:
            _person(person)
            lines.append(f"  {person.email:28} staff: {person.staff_role}")
        advisor = User.objects.get(email="advisor@prorata.example")
        for name, country, currency, language, corporate, vat, members in ACCOUNTS:
            account = Account.objects.filter(name=name).first() or account_create(
                name=name, country=country, currency=currency, language=language,
                vat_number=vat,
                billing_mode=BillingMode.CORPORATE if corporate else BillingMode.SELF_SERVICE,
                advisor=advisor if corporate else None,
            )
            for person, roles in members:
                user = _person(person)
                membership_set_roles(actor=None, account=account, user=user, **roles)
                role_names = ", ".join(role.replace("_", " ") for role in roles)
                lines.append(f"  {person.email:28} {account.name}: {role_names}")
    return lines
