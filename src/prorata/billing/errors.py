"""Errors of billing (documents, renewals' Pay now, refunds), in the project's vocabulary
(:mod:`prorata_core.errors`)."""

from __future__ import annotations

from prorata_core.errors import ProrataError


class NothingToPay(ProrataError):
    """Pay now on an invoice that has nothing left to pay (paid meanwhile, or closed)."""

    code = "nothing_to_pay"
    http_status = 409


class AuthenticationInProgress(ProrataError):
    """Pay now while the customer's bank is waiting for them to authenticate the previous Pay
    now payment (3-D Secure): a second attempt could charge the invoice twice. Nothing is done;
    they finish (or give up) the authentication first."""

    code = "authentication_in_progress"
    http_status = 409


class RefundRefused(ProrataError):
    """A refund that cannot be made: not a succeeded card payment, more than the account's credit
    or than what is left of the payment, or refused by the payment provider."""

    code = "refund_refused"
    http_status = 409


class TransferAlreadyRecorded(ProrataError):
    """A bank transfer whose bank reference is already recorded on the same invoice: the same
    transfer typed twice (``params.reference``, ``params.number``); nothing is recorded again."""

    code = "transfer_already_recorded"
    http_status = 409
