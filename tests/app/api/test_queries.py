"""The API token's hand-written query gives what its ORM reference gives, in one query."""

from __future__ import annotations

import pytest

from prorata.accounts.models import User
from prorata.accounts.services import account_create, membership_set_roles
from prorata.api.models import ApiToken
from prorata.api.queries import token_with_memberships, token_with_memberships_orm
from tests.app.api.conftest import token_for
from tests.app.parity import values_of

pytestmark = pytest.mark.django_db


def _shape(found):
    if found is None:
        return None
    token, pairs = found
    return (values_of(token), values_of(token.user),
            sorted((values_of(account), values_of(member)) for account, member in pairs))


@pytest.mark.parametrize("accounts", [0, 1, 3])
def test_the_token_with_its_user_and_accounts_is_the_orm_s(world, accounts,
                                                           django_assert_num_queries):
    user = User.objects.create_user(f"member-of-{accounts}@x.example", "pw")
    for index in range(accounts):
        account = account_create(name=f"Account {index}", country="FR" if index else "US")
        membership_set_roles(actor=None, account=account, user=user,
                             billing_contact=index != 1, organizer=index == 1)
    token_for(user)
    prefix = ApiToken.objects.get(user=user).prefix
    with django_assert_num_queries(1):
        found = token_with_memberships(prefix=prefix)
    assert found is not None and len(found[1]) == accounts
    assert _shape(found) == _shape(token_with_memberships_orm(prefix=prefix))


def test_an_unknown_prefix_is_none_in_both(world):
    assert token_with_memberships(prefix="aaaaaaaaaa") is None
    assert token_with_memberships_orm(prefix="aaaaaaaaaa") is None
