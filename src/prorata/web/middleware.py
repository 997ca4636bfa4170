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
from django.utils import translation


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
