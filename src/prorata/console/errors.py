"""The refusals of the staff's money actions (codes mapped to page messages in web/errors.py)."""

from __future__ import annotations

from prorata_core.errors import ProrataError


class _Formatted(ProrataError):
    """The message is a ``%(name)s`` template filled from the params (the console is English;
    ``template`` keeps the untranslated text)."""

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message % params if params else message, **params)
        self.template = message

    code = "staff_action_refused"
    http_status = 409


class StaffActionRefused(_Formatted):
    """A refund, approval or credit adjustment that the rules refuse (nothing was written)."""

    code = "staff_action_refused"
    http_status = 409


class StaffNotPermitted(_Formatted):
    """The staff member's role may not do this on this account."""

    code = "staff_not_permitted"
    http_status = 403
