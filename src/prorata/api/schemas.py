"""Schemas shared by every area of the API: the error body, and the error statuses to document."""

from __future__ import annotations

from typing import Any

from ninja import Schema


class ErrorOut(Schema):
    """Every error: a stable machine ``code``, an English ``message`` saying what to do, and the
    values the message names in ``params`` (``params.errors`` for invalid input)."""

    code: str
    message: str
    params: dict[str, Any]


def errors(*statuses: int) -> dict[int, type[ErrorOut]]:
    """``{status: ErrorOut}`` for an operation's ``response=``, so the OpenAPI document lists them.

    Every authenticated operation can answer 401; add 403/404/409/422 as the handler can.
    """
    return dict.fromkeys(statuses, ErrorOut)
