"""The sandbox gateway's own pages, under ``/sandbox-gateway/v1/`` (as a provider's host would serve
them): its pinned script, its card form (a frame), its tokenisation endpoint and its 3-D Secure
challenge page. These are the gateway's, not Prorata's: the card number is posted here and nowhere
else, and these views never log it or store it (:mod:`prorata.payments.sandbox`).

Who may call: browsers. No session or sign-in is read: a token or a challenge's secret is the only
credential, as with a provider's publishable endpoints.
"""

from __future__ import annotations

import json

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from prorata.common.clock import now
from prorata.payments.errors import CardRejected
from prorata.payments.gateway import ChargeOutcome
from prorata.payments.sandbox import (
    PREFIX,
    CardDetails,
    card_token,
    challenge_answer,
    challenge_find,
    script,
)
from prorata_core.money import Money

_LOCALES = {"en", "fr"}


def _locale(value: str | None) -> str:
    value = (value or "").split("-")[0].lower()
    return value if value in _LOCALES else (translation.get_language() or "en")[:2]


def gateway_js(request: HttpRequest) -> HttpResponse:
    content, _integrity = script()
    response = HttpResponse(content, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    return response


@xframe_options_sameorigin
def card_form(request: HttpRequest) -> HttpResponse:
    """The card form shown in the merchant page's frame."""
    with translation.override(_locale(request.GET.get("locale"))):
        return render(request, "payments/sandbox/card_form.html",
                      {"tokens_url": f"{PREFIX}/tokens", "script_url": f"{PREFIX}/gateway.js",
                       "lang": translation.get_language()})


def _expiry(text: str) -> tuple[int, int] | None:
    parts = text.replace(" ", "").split("/")
    if len(parts) == 2 and all(part.isascii() and part.isdigit() and 1 <= len(part) <= 4
                                for part in parts):
        return int(parts[0]), int(parts[1])
    return None


@csrf_exempt
@require_http_methods(["POST"])
def tokens(request: HttpRequest) -> JsonResponse:
    """``POST {number, expiry: "MM/YY", cvc, locale}`` (JSON) → ``{token, brand, last4}``, or 422
    ``{error: {code, field, message}}`` in ``locale``. Nothing of the card is logged."""
    try:
        body = json.loads(request.body or b"{}")
        if not isinstance(body, dict):
            raise ValueError
    except ValueError:
        return JsonResponse({"error": {"code": "invalid_request", "field": "number",
                                       "message": "Send the card as a JSON object."}}, status=400)
    with translation.override(_locale(str(body.get("locale") or ""))):
        number, cvc = str(body.get("number") or "").strip(), str(body.get("cvc") or "").strip()
        expiry = _expiry(str(body.get("expiry") or ""))
        error = None
        if not number:
            error = ("number", gettext("Enter the card number."))
        elif expiry is None:
            error = ("expiry", gettext("Enter the expiry date as MM/YY, e.g. 12/30."))
        elif not cvc:
            error = ("cvc", gettext("Enter the security code."))
        if error is None and expiry is not None:
            month, year = expiry
            try:
                token = card_token(CardDetails(number=number, exp_month=month, exp_year=year,
                                               cvc=cvc), now())
            except CardRejected as rejected:
                error = (str(rejected.params.get("field", "number")), gettext(rejected.message))
            else:
                return JsonResponse({"token": token}, status=201)
        field, message = error or ("number", "")
        return JsonResponse({"error": {"code": "card_rejected", "field": field,
                                       "message": message}}, status=422)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def challenge(request: HttpRequest, secret: str) -> HttpResponse:
    """The bank's 3-D Secure page: Approve or Fail; then back to the merchant's return URL."""
    charge = challenge_find(secret)
    if charge is None:
        raise Http404("No such authentication")
    if request.method == "POST":
        charge = challenge_answer(secret, approve=request.POST.get("answer") == "approve")
        if charge is None:
            raise Http404("No such authentication")
        if charge.return_url:
            return HttpResponseRedirect(charge.return_url, status=303)
    return render(request, "payments/sandbox/challenge.html", {
        "charge": charge, "amount": Money(charge.amount, charge.currency),
        "pending": charge.outcome == ChargeOutcome.REQUIRES_ACTION,
        "approved": charge.outcome == ChargeOutcome.SUCCEEDED,
        "message": charge.message,
    })
