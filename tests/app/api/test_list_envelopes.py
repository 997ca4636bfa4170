"""The last lists of the personal API that answered bare arrays (issue 17, "Lists share one
envelope"): ``/accounts/{id}/members`` (oldest first), ``/accounts/{id}/payment-methods`` (the
default first, then newest first) and ``/accounts/{id}/licenses`` (by subscription) answer
``{data, has_more, next_cursor}`` with the shared opaque cursor (prorata.api.pagination). Each is
walked to the end by ``next_cursor`` and gives every row exactly once in its order; garbage, a
readable position, a tampered cursor, another account's and another list's are a 422
``invalid_cursor`` that changes nothing."""

from __future__ import annotations

import pytest

from prorata.accounts.models import User
from prorata.accounts.services import account_create, membership_set_roles
from prorata.catalog.models import BillingCycle, Plan, Price, Product
from prorata.payments.models import PaymentMethod
from prorata.payments.services import payment_method_set_default
from prorata_core.periods import utc
from tests.app.api.conftest import ApiClient, token_for
from tests.app.subscriptions.support import buy, card, customer, save_card

pytestmark = pytest.mark.django_db


def walk(api: ApiClient, url: str, *, limit: int, key=lambda row: row["id"]) -> tuple[list, int]:
    """Every row of the list at ``url`` by pages of ``limit``, and how many pages it took."""
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        response = api.get(url, query_params=query)
        assert response.status_code == 200, response.content
        page = response.json()
        assert set(page) == {"data", "has_more", "next_cursor"}
        assert len(page["data"]) <= limit
        pages += 1
        seen += [key(row) for row in page["data"]]
        assert page["has_more"] is (page["next_cursor"] is not None)
        if not page["has_more"]:
            return seen, pages
        cursor = page["next_cursor"]
        assert len(cursor) == 32 and "|" not in cursor and ":" not in cursor


def assert_refused(api: ApiClient, url: str, bad_cursors: list[str]) -> None:
    for bad in bad_cursors:
        response = api.get(url, query_params={"cursor": bad})
        assert response.status_code == 422, bad
        assert response["Content-Type"].startswith("application/json")
        body = response.json()
        assert body["code"] == "invalid_cursor" and "next_cursor" in body["message"]


def tampered(cursor: str) -> str:
    return cursor[:-1] + ("A" if cursor[-1] != "A" else "B")


def first_cursor(api: ApiClient, url: str) -> str:
    cursor = api.get(url, query_params={"limit": 1}).json()["next_cursor"]
    assert cursor is not None
    return cursor


def test_members_walk_to_the_end_oldest_first_and_bad_cursors_are_refused(clock):
    acme = account_create(name="Acme", country="US")
    admin = User.objects.create_user("admin@acme.example", "pw")
    membership_set_roles(actor=None, account=acme, user=admin, admin=True)
    for n in range(6):  # e-mails out of the membership order: the list is by membership
        membership_set_roles(actor=None, account=acme,
                             user=User.objects.create_user(f"{'zyxwvu'[n]}@acme.example"))
    api = ApiClient(token_for(admin))
    url = f"/api/v1/accounts/{acme.pk}/members"
    expected = ["admin@acme.example", *[f"{c}@acme.example" for c in "zyxwvu"]]
    seen, pages = walk(api, url, limit=3, key=lambda m: m["email"])
    assert (seen, pages) == (expected, 3)
    assert walk(api, url, limit=100, key=lambda m: m["email"]) == (expected, 1)

    other = account_create(name="Other", country="US")
    membership_set_roles(actor=None, account=other, user=admin, admin=True)
    for email in ("o1@other.example", "o2@other.example"):
        membership_set_roles(actor=None, account=other, user=User.objects.create_user(email))
    cursor = first_cursor(api, url)
    assert_refused(api, url, [
        "garbage", "2026-03-11T00:00:00+00:00|8", tampered(cursor),
        first_cursor(api, f"/api/v1/accounts/{other.pk}/members"),  # another account's
        first_cursor(api, "/api/v1/accounts"),  # another list's
    ])
    assert api.get(url, query_params={"limit": 0}).status_code == 422


def test_payment_methods_walk_to_the_end_the_default_first_and_bad_cursors_are_refused(clock):
    account, user = customer("Cards", "US", "cora@cards.example", currency="USD")
    ids = []
    for minute in range(5):
        clock.set(utc(2026, 1, 1, 0, minute))
        ids.append(save_card(account, user))
    clock.set(utc(2026, 1, 1, 0, 10))
    ids.append(save_card(account, user))  # same instant as the next one: the id breaks the tie
    ids.append(save_card(account, user))
    payment_method_set_default(account=account, payment_method_id=ids[2], actor=user)
    PaymentMethod.objects.filter(pk=ids[4]).update(removed_at=utc(2026, 1, 2))  # never listed
    api = ApiClient(token_for(user))
    url = f"/api/v1/accounts/{account.pk}/payment-methods"
    expected = [ids[2], ids[6], ids[5], ids[3], ids[1], ids[0]]
    for limit in (1, 2, 4):
        seen, pages = walk(api, url, limit=limit)
        assert seen == expected, limit
        assert pages == -(-len(expected) // limit)
    assert api.get(url).json()["data"][0]["is_default"] is True

    other, someone = customer("Other", "US", "otto@other.example", currency="USD")
    save_card(other, someone)
    save_card(other, someone)
    theirs = first_cursor(ApiClient(token_for(someone)),
                          f"/api/v1/accounts/{other.pk}/payment-methods")
    token_for(user)  # a second token: the token list has a next page
    cursor = first_cursor(api, url)
    assert_refused(api, url, ["garbage", "2026-01-01T00:10:00+00:00|7", tampered(cursor), theirs,
                              first_cursor(api, "/api/v1/tokens")])
    assert PaymentMethod.objects.filter(account=account, removed_at__isnull=True).count() == 6


def test_license_pools_walk_to_the_end_by_subscription_and_bad_cursors_are_refused(
        clock, demo_catalog):
    product = Product.objects.create(code="storage", name="Cloud storage")
    plan = Plan.objects.create(product=product, code="storage_basic", name="Basic", rank=1,
                               participant_limit=0)
    Price.objects.create(plan=plan, cycle=BillingCycle.objects.get(code="monthly"),
                         currency="USD", unit_amount=1000)
    clock.set(utc(2026, 1, 1))
    account, alice = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    buy(account, alice, "storage_basic", "monthly", 3, product="storage", card_token=card())
    buy(account, alice, "standard", "annual", 2)
    api = ApiClient(token_for(alice))
    url = f"/api/v1/accounts/{account.pk}/licenses"
    seen, pages = walk(api, url, limit=1, key=lambda pool: (pool["product"], pool["bought"]))
    assert (seen, pages) == ([("storage", 3), ("webinar", 2)], 2)
    page = api.get(url).json()
    assert (page["has_more"], page["next_cursor"]) == (False, None)
    assert page["data"][1]["free"] == 2 and page["data"][1]["holders"] == []

    token_for(alice)  # a second token: the token list has a next page
    assert_refused(api, url, ["garbage", "1|2", tampered(first_cursor(api, url)),
                              first_cursor(api, "/api/v1/tokens")])
