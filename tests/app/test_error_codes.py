"""One error vocabulary (STYLE rule 10): every business error is defined in an app's (or the
core's) ``errors.py``; every code has a page message with a French translation
(:data:`prorata.web.errors.MESSAGES`), unless it is worded where it is raised
(:data:`~prorata.web.errors.RAISER_WORDED`); and every code has an API status, documented in
:mod:`prorata.api.errors`. A new error class without them fails here."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from django.utils import translation

import prorata
from prorata.subscriptions.errors import PaymentFailed
from prorata.web.errors import RAISER_WORDED, page_messages
from prorata_core.errors import ProrataError

#: The statuses the API answers an error with (prorata.api.errors' table).
API_STATUSES = {400, 401, 402, 403, 404, 409, 410, 413, 422, 429, 503}


def _every_module() -> None:
    for info in pkgutil.walk_packages(prorata.__path__, "prorata."):
        if ".migrations" in info.name or info.name.startswith(("prorata.settings", "prorata.wsgi")):
            continue
        importlib.import_module(info.name)


def _error_classes() -> list[type[ProrataError]]:
    _every_module()
    found, todo = set(), [ProrataError]
    while todo:
        for subclass in todo.pop().__subclasses__():
            if subclass.__module__.startswith(("prorata.", "prorata_core.")):
                found.add(subclass)
            todo.append(subclass)
    return sorted(found, key=lambda cls: (cls.__module__, cls.__name__))


CLASSES = _error_classes()
CODES = sorted({cls.code for cls in CLASSES} | PaymentFailed.codes)


def test_the_vocabulary_is_found():
    assert len(CLASSES) >= 40 and "quote_changed" in CODES and "payment_declined" in CODES


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_each_error_is_defined_in_an_errors_module(cls):
    assert cls.__module__.rsplit(".", 1)[-1] == "errors", (
        f"{cls.__name__} is defined in {cls.__module__}: move it to its app's errors.py")


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.code)
def test_each_error_has_an_api_status(cls):
    assert cls.http_status in API_STATUSES


@pytest.mark.parametrize("code", CODES)
def test_each_code_has_a_french_page_message(code):
    messages = page_messages()
    if code in RAISER_WORDED:
        assert messages.get(code) is None
        return
    assert code in messages, (
        f"{code}: add its page message to MESSAGES in its app's errors.py or in web/errors.py")
    message = messages[code]
    assert message is not None, f"{code}: give it a message, or list it in RAISER_WORDED"
    with translation.override("en"):
        english = str(message)
    with translation.override("fr"):
        french = str(message)
    assert french != english, f"{code}: translate {english!r} in a French catalog"


def test_a_gateway_outcome_is_named_by_its_code():
    assert PaymentFailed("Declined.", code="declined").code == "payment_declined"
    assert PaymentFailed("No funds.", code="insufficient_funds").code == "insufficient_funds"
