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
from django.shortcuts import render
from django.utils import timezone, translation

from prorata.web.errors import NulCharacter, error_message


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


class NulCharacterMiddleware:
    """Refuse (400 page, nothing read or written) a request with a NUL character in its path, its
    query string or its form fields (URL-encoded or multipart), before any view reads it:
    PostgreSQL cannot store the character (a 500 there), and no field of any form takes one.

    The JSON API (``/api/``) refuses it itself, after authentication, with its JSON error
    (:func:`prorata.api.operator.reject_nul`): an anonymous request there answers 401 first.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith("/api/") and self._has_nul(request):
            error = NulCharacter("A NUL character is not allowed in any field.")
            return render(request, "400.html", {"message": error_message(error),
                                                "code": error.code}, status=400)
        return self.get_response(request)

    @staticmethod
    def _has_nul(request: HttpRequest) -> bool:
        if "\x00" in request.path_info:
            return True
        fields = [request.GET]
        if request.method == "POST" and request.content_type in (
                "application/x-www-form-urlencoded", "multipart/form-data"):
            # The raw body first: it stays readable by a view that wants it (a webhook), which
            # parsing the form from the stream would prevent. (No form of the project uploads
            # files: a body over DATA_UPLOAD_MAX_MEMORY_SIZE is Django's own 400.)
            request.body  # noqa: B018
            fields.append(request.POST)
        return any("\x00" in key or any("\x00" in str(value) for value in values)
                   for query in fields for key, values in query.lists())


class ContentSecurityPolicyMiddleware:
    """Every answer carries ``settings.PRORATA_CONTENT_SECURITY_POLICY`` (a view that sets its own
    header keeps it): scripts only from this server, no inline script, no ``eval``, no plugin,
    forms posted only here; with the Stripe gateway selected, Stripe's sources added (read at each
    request, as the gateway is: prorata.payments.gateway).

    ``frame-ancestors`` follows the answer's X-Frame-Options (set later in the chain, so already
    there on the way out): ``DENY`` is ``'none'``, ``SAMEORIGIN`` (the sandbox's card form, framed
    by the checkout) ``'self'``; browsers that read both then agree.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._policies: dict[str, str] = {}

    def policy(self) -> str:
        """The header's value for the gateway selected now (one string per gateway, kept)."""
        gateway = settings.PRORATA_PAYMENT_GATEWAY
        if gateway not in self._policies:
            directives = {name: list(sources) for name, sources in
                          settings.PRORATA_CONTENT_SECURITY_POLICY.items()}
            if gateway == "stripe":
                from prorata.payments.stripe_gateway import CONTENT_SECURITY_POLICY

                for name, sources in CONTENT_SECURITY_POLICY.items():
                    directives.setdefault(name, ["'self'"]).extend(sources)
            self._policies[gateway] = "; ".join(
                f"{name} {' '.join(sources)}" for name, sources in directives.items())
        return self._policies[gateway]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            policy = self.policy()
            frame = response.get("X-Frame-Options", "").upper()
            ancestors = {"DENY": "'none'", "SAMEORIGIN": "'self'"}.get(frame)
            response["Content-Security-Policy"] = (
                f"{policy}; frame-ancestors {ancestors}" if ancestors else policy)
        return response
