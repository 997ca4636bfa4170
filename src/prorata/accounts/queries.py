"""The accounts app's hand-written queries: the only SQL of the app that is not the ORM's.

Each function here reads the same rows, into the same model instances, as the ORM query written
beside it as ``<name>_orm`` (the reference: ``tests/app/accounts/test_queries.py`` compares the two
for every case, and ``benchmarks/queries.py`` measures what the hand-written one saves; the figures
are in ``benchmarks/README.md``). Both are kept because a shortcut is only kept while its gain is
measured: when the gain goes, the ORM query replaces it.

They run through :func:`~prorata.common.db.prepared_cursor` (prepared once per connection on
PostgreSQL). Who may call: :mod:`prorata.accounts.permissions` and the session store only.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache

from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import connection

from prorata.accounts.models import Account, Membership
from prorata.common.db import concrete_columns, model_from_row, prepared_cursor

_ACCOUNT_COLUMNS = ", ".join(f"a.{name}" for name in concrete_columns(Account))
_MEMBER_COLUMNS = ", ".join(f"m.{name}" for name in concrete_columns(Membership))
_ACCOUNT_SQL = (
    f"SELECT {_ACCOUNT_COLUMNS}, {_MEMBER_COLUMNS} FROM accounts_account a "  # noqa: S608
    "LEFT JOIN accounts_membership m ON m.account_id = a.id AND m.user_id = %s WHERE a.id = %s"
)
_ACCOUNT_END = len(concrete_columns(Account))


def account_with_membership(
    *, user_id: int | None, account_id: int
) -> tuple[Account, Membership | None] | None:
    """The account ``account_id`` and the membership of user ``user_id`` in it (None when not a
    member, or ``user_id`` is None), in one query; None when there is no such account.

    ``account_id`` must fit a signed 64-bit integer (the caller turns anything else into a 404)."""
    with prepared_cursor() as cursor:
        cursor.execute(_ACCOUNT_SQL, [user_id, account_id])
        row = cursor.fetchone()
    if row is None:
        return None
    account = model_from_row(Account, row[:_ACCOUNT_END])
    member = (model_from_row(Membership, row[_ACCOUNT_END:])
              if row[_ACCOUNT_END] is not None else None)
    return account, member


def account_with_membership_orm(
    *, user_id: int | None, account_id: int
) -> tuple[Account, Membership | None] | None:
    """The reference for :func:`account_with_membership`: the ORM's two queries."""
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        return None
    member = (Membership.objects.filter(user_id=user_id, account=account).first()
              if user_id is not None else None)
    return account, member


@cache
def _session_sql(model: type[AbstractBaseSession]) -> str:
    columns = ", ".join(concrete_columns(model))
    return (f"SELECT {columns} FROM {model._meta.db_table} "  # noqa: S608
            "WHERE session_key = %s AND expire_date > %s")


def unexpired_session(
    *, model: type[AbstractBaseSession], session_key: str | None, expires_after: datetime
) -> AbstractBaseSession | None:
    """The session of ``session_key`` that expires after ``expires_after``, or None."""
    with prepared_cursor() as cursor:
        cursor.execute(_session_sql(model), [
            session_key, connection.ops.adapt_datetimefield_value(expires_after)])
        row = cursor.fetchone()
    return None if row is None else model_from_row(model, row)


def unexpired_session_orm(
    *, model: type[AbstractBaseSession], session_key: str | None, expires_after: datetime
) -> AbstractBaseSession | None:
    """The reference for :func:`unexpired_session`: Django's own query (``SessionStore``'s)."""
    try:
        return model.objects.get(session_key=session_key, expire_date__gt=expires_after)
    except model.DoesNotExist:
        return None
