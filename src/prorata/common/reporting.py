"""What Django's error reports may show (``DEFAULT_EXCEPTION_REPORTER_FILTER``): the 500 page
with ``DEBUG`` on and the error e-mails to ``ADMINS`` (none are configured by default) list the
POST parameters and every frame's local variables. Django already hides the values of names that
look secret (password, token, key…); this also masks a card number typed into any text field
(issue 18), in the POST data and in string locals such as a support message being saved.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, QueryDict
from django.views.debug import SafeExceptionReporterFilter

from prorata.common.cardnumbers import mask_card_numbers


def _masked(value: Any) -> Any:
    return mask_card_numbers(value) if isinstance(value, str) else value


class CardSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, with card numbers masked in POST values and string frame variables."""

    def get_post_parameters(self, request: HttpRequest | None) -> Any:
        parameters = super().get_post_parameters(request)
        if not isinstance(parameters, QueryDict):
            return parameters
        masked = parameters.copy()  # a mutable copy
        for name, values in masked.lists():
            masked.setlist(name, [_masked(value) for value in values])
        return masked

    def get_traceback_frame_variables(self, request: HttpRequest | None,
                                      tb_frame: Any) -> Any:
        return [(name, _masked(value))
                for name, value in super().get_traceback_frame_variables(request, tb_frame)]
