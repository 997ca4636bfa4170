"""One envelope for every paginated list of the API, with opaque keyset cursors (issue 17).

A list answers ``{"data": [...], "has_more": bool, "next_cursor": str | null}``: pass
``next_cursor`` back as ``cursor`` for the next page; it is ``null`` (and ``has_more`` false) on
the last page. There is never a total count (DESIGN §8): every page costs the same at any depth.

A cursor is opaque: 24 bytes, base64url without padding (32 characters) — a version byte, the
position (an instant in integer microseconds since the epoch and a row id, both signed 64-bit),
and the first 7 bytes of an HMAC-SHA256 (keyed from ``SECRET_KEY``) over the position *and the
list it belongs to* (its ``scope``: the route, the account and the filters). A client cannot
read, make or alter one, and a cursor of another list, account or filter is refused. Anything
else — garbage, a truncated value, a tampered one — is a 422 ``invalid_cursor``, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import struct
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from django.utils.crypto import salted_hmac
from pydantic import BaseModel, Field

from prorata.api.errors import InvalidCursor

T = TypeVar("T")
Row = TypeVar("Row")

_VERSION = 1
_POSITION = struct.Struct(">Bqq")
_MAC_BYTES = 7
_LENGTH = 32  # characters: (17 + 7) bytes in base64url
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SALT = "prorata.api.pagination"

#: The default and largest page size of every list.
DEFAULT_LIMIT = 25
MAX_LIMIT = 100


class Page(BaseModel, Generic[T]):
    """One page of a list, in the list's order (newest first unless the list says otherwise).
    ``next_cursor`` goes back as ``cursor`` for the next page; ``null`` on the last one."""

    data: list[T]
    has_more: bool
    next_cursor: str | None = Field(description="Opaque: pass it back unchanged as `cursor`.")


def _micros(instant: datetime | None) -> int:
    if instant is None:
        return 0
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _mac(scope: str, payload: bytes) -> bytes:
    return salted_hmac(_SALT, scope.encode() + b"\0" + payload, algorithm="sha256").digest()[
        :_MAC_BYTES]


def cursor_encode(scope: str, at: datetime | None, pk: int) -> str:
    """The opaque cursor of position ``(at, pk)`` in the list ``scope``."""
    payload = _POSITION.pack(_VERSION, _micros(at), pk)
    return base64.urlsafe_b64encode(payload + _mac(scope, payload)).decode().rstrip("=")


def cursor_decode(scope: str, cursor: str) -> tuple[datetime, int]:
    """The position ``(at, pk)`` of ``cursor``, which must be one :func:`cursor_encode` made for
    this very ``scope``; else :class:`InvalidCursor` (422)."""
    refused = InvalidCursor(
        "This cursor is not one this list gave: pass a page's next_cursor back unchanged, with "
        "the same filters (or leave cursor out for the first page).")
    if not isinstance(cursor, str) or len(cursor) != _LENGTH or not cursor.isascii():
        raise refused
    try:
        raw = base64.urlsafe_b64decode(cursor + "====")
    except (binascii.Error, ValueError):
        raise refused from None
    payload, mac = raw[:_POSITION.size], raw[_POSITION.size:]
    if len(mac) != _MAC_BYTES or not hmac.compare_digest(mac, _mac(scope, payload)):
        raise refused
    version, micros, pk = _POSITION.unpack(payload)
    if version != _VERSION:
        raise refused
    try:
        at = _EPOCH + timedelta(microseconds=micros)
    except OverflowError:  # signed by us, so never; but a 500 is never the answer
        raise refused from None
    return at, pk


def page_of(
    rows: Sequence[Row], *, limit: int, scope: str,
    position: Callable[[Row], tuple[datetime | None, int]], out: Callable[[Row], object],
) -> dict[str, Any]:
    """The page (the :class:`Page` envelope's fields) of ``rows`` — fetched with ``limit + 1`` rows to know whether more follow —
    with its next cursor made from the last row shown (``position(row)``)."""
    shown = list(rows[:limit])
    more = len(rows) > limit and bool(shown)
    cursor = cursor_encode(scope, *position(shown[-1])) if more else None
    return {"data": [out(row) for row in shown], "has_more": more, "next_cursor": cursor}


__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "Page", "cursor_decode", "cursor_encode", "page_of"]
