"""The Stripe gateway's two URLs in Prorata, under ``/payments/stripe/v1/``: the card form's
adapter script (Prorata's own file, loaded with its SRI hash) and the webhook endpoint Stripe
posts its events to.

Who may call: the script, anyone (it is static); the webhook, Stripe only, proved by the
``Stripe-Signature`` header (no session, no CSRF token: the signature is the credential).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from prorata.payments.errors import StripeSignatureInvalid
from prorata.payments.stripe_gateway import script
from prorata.payments.stripe_webhooks import stripe_webhook_handle

#: Stripe's events are small; anything larger is not one.
MAX_BODY = 512 * 1024


def card_js(request: HttpRequest) -> HttpResponse:
    content, _integrity = script()
    response = HttpResponse(content, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    return response


@csrf_exempt
@require_http_methods(["POST"])
def webhook(request: HttpRequest) -> JsonResponse:
    """``POST`` an event with its ``Stripe-Signature`` → 200 ``{received, event, outcome}`` (a
    replay too: ``replayed: true``), or 400 ``{error: {code, message}}`` with nothing done."""
    body = request.body
    if len(body) > MAX_BODY:
        return JsonResponse({"error": {"code": "payload_too_large",
                                       "message": "A Stripe event is smaller than this."}},
                            status=413)
    try:
        handled = stripe_webhook_handle(payload=body,
                                        signature=request.headers.get("Stripe-Signature"))
    except StripeSignatureInvalid as refused:
        return JsonResponse({"error": {"code": refused.code, "message": refused.message}},
                            status=refused.http_status)
    return JsonResponse({"received": True, "event": handled.event_id, "type": handled.type,
                         "outcome": handled.outcome, "replayed": handled.replayed})
