"""The API app's hand-written query: the bearer token with its user and the user's accounts.

Every API request starts here. The function reads the same rows, into the same model instances, as
the ORM queries written beside it as :func:`token_with_memberships_orm` (the reference:
``tests/app/api/test_queries.py`` compares them; ``benchmarks/queries.py`` measures the gain, whose
figures are in ``benchmarks/README.md``). Who may call: :mod:`prorata.api.services` only.
"""

from __future__ import annotations

from prorata.accounts.models import Account, Membership, User
from prorata.api.models import ApiToken
from prorata.common.db import concrete_columns, model_from_row, prepared_cursor

_TOKEN_COLUMNS = ", ".join(f"t.{name}" for name in concrete_columns(ApiToken))
_USER_COLUMNS = ", ".join(f"u.{name}" for name in concrete_columns(User))
_MEMBER_COLUMNS = ", ".join(f"m.{name}" for name in concrete_columns(Membership))
_ACCOUNT_COLUMNS = ", ".join(f"a.{name}" for name in concrete_columns(Account))
_TOKEN_SQL = (
    f"SELECT {_TOKEN_COLUMNS}, {_USER_COLUMNS}, {_MEMBER_COLUMNS}, {_ACCOUNT_COLUMNS} "  # noqa: S608
    "FROM api_apitoken t JOIN accounts_user u ON u.id = t.user_id "
    "LEFT JOIN accounts_membership m ON m.user_id = u.id "
    "LEFT JOIN accounts_account a ON a.id = m.account_id "
    "WHERE t.prefix = %s"
)
_TOKEN_END = len(concrete_columns(ApiToken))
_USER_END = _TOKEN_END + len(concrete_columns(User))
_MEMBER_END = _USER_END + len(concrete_columns(Membership))

Memberships = list[tuple[Account, Membership]]


def token_with_memberships(*, prefix: str) -> tuple[ApiToken, Memberships] | None:
    """The token of ``prefix`` with its user loaded (``token.user``), and every account the user
    is a member of with the membership, in one query; None for an unknown prefix. The pairs come
    in no particular order."""
    with prepared_cursor() as cursor:
        cursor.execute(_TOKEN_SQL, [prefix])
        rows = cursor.fetchall()
    if not rows:
        return None
    first = rows[0]
    token = model_from_row(ApiToken, first[:_TOKEN_END])
    token.user = model_from_row(User, first[_TOKEN_END:_USER_END])
    pairs = [
        (model_from_row(Account, row[_MEMBER_END:]),
         model_from_row(Membership, row[_USER_END:_MEMBER_END]))
        for row in rows if row[_USER_END] is not None
    ]
    return token, pairs


def token_with_memberships_orm(*, prefix: str) -> tuple[ApiToken, Memberships] | None:
    """The reference for :func:`token_with_memberships`: the ORM's two queries."""
    token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if token is None:
        return None
    members = Membership.objects.filter(user_id=token.user_id).select_related("account")
    return token, [(member.account, member) for member in members]
