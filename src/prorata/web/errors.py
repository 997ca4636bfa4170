"""Business errors as page messages, translated (STYLE rule 10: mapped once, here).

:func:`error_message` turns a :class:`~prorata_core.errors.ProrataError` into text for the reader's
language: each machine ``code`` has a gettext message filled with the error's ``params``, here or
in its app's ``errors.py`` (``MESSAGES`` there, merged by :func:`page_messages`). The codes
of :data:`RAISER_WORDED` are worded where they are raised (the message names the values to fix):
they, and a message whose params are missing, fall back to the gettext of the English message.
``tests/app/test_error_codes.py`` checks that every code of every app's ``errors.py`` is here, with
a French translation, and has an API status.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from prorata_core.errors import ProrataError


class NulCharacter(ProrataError):
    """A NUL character (U+0000) in a page's address, query or form: no name, code, reference or
    message holds one, and PostgreSQL cannot store one (:class:`prorata.web.middleware.
    NulCharacterMiddleware` refuses the request before any view reads it)."""

    code = "nul_character"
    http_status = 400


#: code → message; ``%(name)s`` are filled from the error's params.
MESSAGES: dict[str, Any] = {
    "transfer_already_recorded": _(
        "A transfer with the bank reference %(reference)s is already recorded on invoice "
        "%(number)s: check the bank statement; a second transfer has its own reference."
    ),
    "vat_number_outside_eu": _(
        "A VAT number is only for accounts in the European Union: leave the field empty, or "
        "change the account's country in its billing details first."
    ),
    "nul_character": _(
        "What you sent contains an invisible NUL character, which no field accepts: remove it "
        "(retype the text rather than pasting it) and send again."
    ),
    "invalid_input": None,  # many different messages: the English text, through gettext
    "invalid_license_count": _(
        "This plan takes between %(min)s and %(max)s licenses: choose a number in that range."
    ),
    "invalid_vat_number": _(
        "%(vat_number)s is not a valid VAT number: check the country prefix and the digits "
        "(for example FR40303265045), or leave the field empty."
    ),
    "unknown_country": _("The account's country is not known: contact support."),
    "currency_mismatch": _("The amounts are not in the same currency."),
    "not_in_catalog": _("This plan or billing period is not sold: choose another one."),
    "change_refused": None,
    "nothing_to_change": _(
        "That is already your subscription: change the plan, the number of licenses or the "
        "billing period."
    ),
    "downgrade_needs_support": _(
        "A plan downgrade is done by our support team. Send the prefilled support request and "
        "we will take care of it."
    ),
    "corporate_account": _(
        "This account is billed through the Corporate Billing Center: contact %(contact)s to "
        "change, cancel or renew it."
    ),
    "past_due": _(
        "This subscription has an unpaid invoice: pay it (or update your card) first, then "
        "modify the subscription."
    ),
    "trial_only_purchase": _("A free trial cannot be modified: choose Subscribe now to buy a plan."),
    "advisor_priced": _(
        "This plan is priced by an advisor: contact us and an advisor will prepare your offer."
    ),
    "subscription_expired": _(
        "This subscription has expired: choose Subscribe now to reactivate it."
    ),
    "currency_locked": _(
        "This subscription is billed in %(currency)s; it cannot change currency."
    ),
    "already_subscribed": _(
        "This product is already subscribed: use Modify subscription to change it."
    ),
    "quote_changed": _(
        "Your order summary changed since you saw it (prices, taxes, your subscription or your "
        "credit). Check the new amounts below, then place the order again."
    ),
    "idempotency_conflict": _(
        "This order form was already used for a different order. Review your order and place it "
        "again."
    ),
    "in_progress": _("Your order is still being processed. Reload this page in a moment."),
    "order_in_progress": _(
        "Another order of this account is waiting for its payment. Try again in a few minutes."
    ),
    "payment_method_required": _(
        "Money is due: enter a card or choose a saved one to place the order."
    ),
    "nothing_to_pay": _("This invoice has nothing left to pay."),
    "authentication_in_progress": _(
        "Your bank is still waiting for you to authenticate your last payment of this invoice: "
        "finish it on your bank's page first."
    ),
    "payment_declined": None,  # the gateway's own message, translated where it is written
    "insufficient_funds": None,
    # The order's own message (subscriptions.services), translated where it is written:
    "payment_refused": None,
    "not_received": None,
    "order_outdated": None,
    "authentication_abandoned": None,  # 3-D Secure never completed (subscriptions.services)
    "card_rejected": None,
    "not_permitted": _(
        "Only the account's billing contact buys or changes its subscriptions; ask them."
    ),
    "payment_method_not_found": _(
        "This card is not on file for this account: choose one of its saved cards or add a new one."
    ),
    "corporate_pays_by_transfer": _(
        "This account pays its invoices by bank transfer: no card is needed. Contact "
        "%(contact)s with any question."
    ),
    "busy": _("We are busy right now and nothing was saved: please try again."),
    "transition_refused": _(
        "This subscription changed meanwhile: nothing was changed. Reload the page and try again."
    ),
    "payment_failed": _("The payment was refused and nothing was changed: use another card."),
    "refund_refused": _(
        "This refund cannot be made: a refund goes back to the card that paid, and is at most "
        "the account's credit and what is left of that payment."
    ),
    "unknown_currency": _("This currency is not one we bill in: choose EUR or USD."),
    "invalid_period": _("This period is not valid: its start must come before its end."),
    "idempotency_key_reused": _(
        "This payment was already sent with other details: review your order and place it again."
    ),
    "clock_not_movable": _("The clock follows the real time here and cannot be moved."),
    "csrf_failed": _(
        "The page's security token is missing or has expired: reload the page and try again."
    ),
    "invalid_token": _(
        "This API token is not valid: create a new one on your profile's API tokens page."
    ),
    "idempotency_key_required": _(
        "This order was sent without an Idempotency-Key header: send one with a new unique value."
    ),
    # The sign-in and profile refusals: the same words as where they are raised.
    "email_invalid": _("Enter a valid e-mail address."),
    "email_unchanged": _("This is already your e-mail address."),
    "email_taken": _("This address is already used by another account."),
    "email_not_sent": _("The confirmation e-mail could not be sent. Please try again later."),
    "email_link_invalid": _(
        "This link is not valid. Request a new e-mail change from your profile."
    ),
    "email_link_used": _("This link has already been used."),
    "email_link_expired": _(
        "This link has expired. Request a new e-mail change from your profile."
    ),
    "language_unknown": _("Choose one of the languages offered."),
    "cancel_reason_too_long": _("Please keep the reason under %(max)s characters."),
}

#: Codes whose message is worded where the error is raised, naming the values to fix (a
#: gateway's refusal, a field's limits): shown as the gettext of that message.
RAISER_WORDED = frozenset({
    "invalid_input", "change_refused", "payment_declined", "insufficient_funds", "card_rejected",
    "invalid_amount", "invalid_duration", "invalid_instant",
    # Worded where raised, each naming the field or amount to fix:
    "billing_details_invalid", "signup_invalid", "staff_action_refused", "staff_not_permitted",
})


def page_messages() -> dict[str, Any]:
    """Every code's page message: :data:`MESSAGES`, and the ``MESSAGES`` of each installed app's
    ``errors`` module (an app may keep its errors' messages beside them, as ``licenses`` does).
    Read once."""
    global _page_messages
    if _page_messages is None:
        merged = dict(MESSAGES)
        for config in apps.get_app_configs():
            try:
                module = importlib.import_module(f"{config.name}.errors")
            except ModuleNotFoundError as missing:
                if missing.name != f"{config.name}.errors":
                    raise
                continue
            if module.__name__ != __name__:
                merged.update(getattr(module, "MESSAGES", {}))
        _page_messages = merged
    return _page_messages


_page_messages: dict[str, Any] | None = None


def error_message(error: ProrataError) -> str:
    """The reader's-language message of ``error``."""
    message: Any = page_messages().get(error.code)
    if message is None:
        return gettext(error.message)
    try:
        return str(message) % dict(error.params)
    except (KeyError, TypeError, ValueError):
        return gettext(error.message)


Formatter = Callable[[ProrataError], str]

__all__ = ["MESSAGES", "RAISER_WORDED", "NulCharacter", "error_message", "page_messages"]
