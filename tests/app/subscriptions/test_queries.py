"""The quote's hand-written query gives what its ORM reference gives, in one query."""

from __future__ import annotations

import pytest

from prorata.billing.models import AccountBalance
from prorata.subscriptions.queries import subscription_states, subscription_states_orm
from tests.app.subscriptions.support import buy, card, customer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_catalog")]


@pytest.mark.parametrize("codes", [["webinar"], ["webinar", "nothing"], ["nothing"]])
def test_the_subscription_states_are_the_orm_s(clock, codes, django_assert_num_queries):
    account, user = customer("Bistro Lyon", "FR", "jeanne@bistro.example")
    buy(account, user, "lite", "monthly", 5, card_token=card())
    other, other_user = customer("Acme", "US", "alice@acme.example")
    buy(other, other_user, "standard", "annual", 2, card_token=card())
    with django_assert_num_queries(1):
        found = subscription_states(account_id=account.pk, product_codes=codes)
    assert found == subscription_states_orm(account_id=account.pk, product_codes=codes)
    assert len(found) == ("webinar" in codes)
    for state, balance in found:
        assert state.product_code == "webinar" and state.plan_code == "lite"
        assert state.quantity == 5 and state.currency == "EUR"
        assert state.period_start.tzinfo is not None
        assert balance == AccountBalance.objects.get(account=account, currency="EUR").balance


def test_without_a_balance_row_the_balance_is_none_in_both(clock):
    account, user = customer("Bistro Lyon", "FR", "jeanne@bistro.example")
    buy(account, user, "lite", "monthly", 5, card_token=card())
    AccountBalance.objects.filter(account=account).delete()
    found = subscription_states(account_id=account.pk, product_codes=["webinar"])
    assert found == subscription_states_orm(account_id=account.pk, product_codes=["webinar"])
    assert found[0][1] is None
