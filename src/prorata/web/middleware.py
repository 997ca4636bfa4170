"""The active language of a request: the signed-in user's own choice, else the browser's.

Django's LocaleMiddleware (earlier in the chain) has already picked the language from the language
cookie (set by the top bar's switch) or the browser's Accept-Language header. This middleware runs
after authentication: when the signed-in user chose a language on their profile, that one wins.
LocaleMiddleware's response half then labels the response with it (Content-Language).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation


class UserLanguageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.languages = {code for code, _name in settings.LANGUAGES}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        language = getattr(user, "language", "") if user is not None and user.is_authenticated else ""
        if language in self.languages:
            translation.activate(language)
            request.LANGUAGE_CODE = language  # type: ignore[attr-defined]
        return self.get_response(request)


class AccountTimeZoneMiddleware:
    """On a page of one account (``/billing/<account_id>/…``), dates are shown in the account's
    time zone (its billing details' choice, else its country's); UTC everywhere else.

    It only reads the account's zone and country: the view still decides who may see the page
    (another account's page answers 404 whatever zone was activated for it).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()

    def process_view(self, request: HttpRequest, view: object, args: object,
                     kwargs: dict[str, object]) -> None:
        account_id = kwargs.get("account_id")
        # Only the customer's pages: the console's account pages (which take an account_id too)
        # show UTC, as their column headings say.
        if isinstance(account_id, int) and request.path_info.startswith("/billing/"):
            from prorata.accounts.billing_details import account_zone_by_id

            zone = account_zone_by_id(account_id)
            if zone is not None:
                timezone.activate(zone)
