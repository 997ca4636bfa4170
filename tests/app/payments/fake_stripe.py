"""A local fake Stripe: a small threaded HTTP server on 127.0.0.1 answering the form-encoded v1
endpoints the Stripe gateway uses, as Stripe's test mode does, and recording every request.

What it answers (only what :mod:`prorata.payments.stripe_gateway` sends):
``POST /v1/customers``, ``POST /v1/payment_methods`` (a ``tok_…`` into a ``pm_…``),
``POST /v1/setup_intents``, ``POST /v1/payment_intents``, ``GET /v1/payment_intents/<id>``,
``GET /v1/payment_intents?customer=…``, ``POST /v1/payment_intents/<id>/cancel``,
``POST /v1/refunds``, ``GET /v1/refunds/<id>``,
``GET /v1/refunds?payment_intent=…``. Every POST honours ``Idempotency-Key`` as Stripe does: the
same key replays the first response (``Idempotent-Replayed: true``), the same key with other
parameters is a 400 ``idempotency_error``.

How a charge behaves: by its PaymentMethod, named as Stripe's test ones are (``pm_card_visa``
succeeds, ``pm_card_chargeDeclined``, ``pm_card_chargeDeclinedInsufficientFunds``,
``pm_card_authenticationRequired``), unless ``FakeStripe.mode`` says otherwise for every charge:
``succeed``, ``decline``, ``insufficient_funds``, ``authenticate`` (on session: ``requires_action``
with a redirect page; off session: the ``authentication_required`` card error), ``timeout`` (the
PaymentIntent is made and succeeds, then the answer hangs past the client's timeout), ``error``
(a 500, nothing made), ``refund_timeout`` (a refund is made, its answer hangs). :meth:`FakeStripe.authenticate` plays the customer on the bank's page;
:meth:`FakeStripe.event` builds a signed webhook delivery.

Not Stripe: it ran here because there is no network; docs/payments.md says so.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe

BEHAVIOURS = {
    "pm_card_visa": "succeed",
    "pm_card_mastercard": "succeed",
    "pm_card_chargeDeclined": "decline",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
    "pm_card_authenticationRequired": "authenticate",
}
CARDS = {"pm_card_mastercard": ("mastercard", "4444")}
#: How long a ``timeout`` answer hangs (seconds); the tests' client gives up after 0.5 s.
HANG = 1.5


@dataclass(frozen=True)
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    params: dict[str, str]
    idempotency_key: str | None
    authorization: str


@dataclass
class FakeStripe:
    """The fake's state; ``url`` once started."""

    webhook_secret: str = "whsec_fake_secret"
    mode: str = ""
    #: Every GET answered 500 (Stripe down for reads: a lookup cannot be answered).
    reads_fail: bool = False
    requests: list[Recorded] = field(default_factory=list)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: PaymentMethods made from a ``tok_…`` (besides the test ones of :data:`BEHAVIOURS`).
    methods: set[str] = field(default_factory=set)
    answers: dict[str, tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    # --- what the tests read ---------------------------------------------------------------

    def posts(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == path]

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self.ids):06d}"

    # --- the customer on the bank's 3-D Secure page ------------------------------------------

    def authenticate(self, intent_id: str, *, approve: bool = True) -> dict[str, Any]:
        with self.lock:
            intent = self.intents[intent_id]
            if approve:
                intent.update(status="succeeded", next_action=None, last_payment_error=None)
            else:
                intent.update(status="requires_payment_method", next_action=None,
                              last_payment_error={"type": "invalid_request_error",
                                                  "code": "payment_intent_authentication_failure",
                                                  "message": "Authentication failed."})
            return json.loads(json.dumps(intent))

    # --- webhook deliveries ------------------------------------------------------------------

    def event(self, kind: str, obj: dict[str, Any], *, event_id: str | None = None,
              timestamp: int, secret: str | None = None) -> tuple[bytes, str]:
        """A delivery of event ``kind`` about ``obj``: its body and ``Stripe-Signature``
        header, signed with the endpoint's secret (or ``secret``) at ``timestamp``."""
        body = json.dumps({
            "id": event_id or self.new_id("evt"), "object": "event", "type": kind,
            "api_version": "2026-01-01", "created": timestamp, "livemode": False,
            "data": {"object": obj},
        })
        header = stripe.WebhookSignature.generate_signature_header(
            body, secret or self.webhook_secret, timestamp=timestamp)
        return body.encode(), header

    # --- the endpoints -------------------------------------------------------------------------

    def handle(self, method: str, path: str, params: dict[str, str],
               key: str | None) -> tuple[int, dict[str, Any], float]:
        """(status, body, seconds to hang before answering)."""
        if method == "POST" and key:
            with self.lock:
                seen = self.answers.get(key)
            if seen is not None:
                first_params, status, body = seen
                if first_params != json.dumps(params, sort_keys=True):
                    return 400, {"error": {
                        "type": "idempotency_error",
                        "message": "Keys for idempotent requests can only be used with the "
                                   "same parameters they were first used with."}}, 0
                return status, body, 0
        if method == "GET" and self.reads_fail:
            return 500, {"error": {"type": "api_error", "message": "Something went wrong."}}, 0
        status, body, hang = self.route(method, path, params)
        if method == "POST" and key and status != 500:
            with self.lock:
                self.answers[key] = (json.dumps(params, sort_keys=True), status, body)
        return status, body, hang

    def route(self, method: str, path: str, params: dict[str, str]
              ) -> tuple[int, dict[str, Any], float]:
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v1/customers":
            return 200, {"id": self.new_id("cus"), "object": "customer",
                         "metadata": _nested(params, "metadata")}, 0
        if method == "POST" and path == "/v1/payment_methods":
            made = self.new_id("pm")
            with self.lock:
                self.methods.add(made)
            return 200, self.payment_method(made), 0
        if method == "POST" and path == "/v1/setup_intents":
            return self.setup_intent(params)
        if method == "POST" and path == "/v1/payment_intents":
            return self.payment_intent(params)
        if method == "GET" and path == "/v1/payment_intents":
            with self.lock:
                found = [i for i in self.intents.values()
                         if i["customer"] == params.get("customer")]
            return 200, _list(list(reversed(found)), path), 0
        if method == "GET" and parts[:2] == ["v1", "payment_intents"] and len(parts) == 3:
            with self.lock:
                intent = self.intents.get(parts[2])
            return (200, intent, 0) if intent else _missing(parts[2])
        if (method == "POST" and parts[:2] == ["v1", "payment_intents"] and len(parts) == 4
                and parts[3] == "cancel"):
            return self.cancel(parts[2], params)
        if method == "POST" and path == "/v1/refunds":
            return self.refund(params)
        if method == "GET" and path == "/v1/refunds":
            with self.lock:
                found = [r for r in self.refunds.values()
                         if r["payment_intent"] == params.get("payment_intent")]
            return 200, _list(list(reversed(found)), path), 0
        if method == "GET" and parts[:2] == ["v1", "refunds"] and len(parts) == 3:
            with self.lock:
                refund = self.refunds.get(parts[2])
            return (200, refund, 0) if refund else _missing(parts[2])
        return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                               "message": f"Unrecognized request URL ({method}: {path})."}}, 0

    def payment_method(self, method_id: str) -> dict[str, Any]:
        brand, last4 = CARDS.get(method_id, ("visa", "4242"))
        return {"id": method_id, "object": "payment_method", "type": "card",
                "card": {"brand": brand, "last4": last4, "exp_month": 12, "exp_year": 2030}}

    def setup_intent(self, params: dict[str, str]) -> tuple[int, dict[str, Any], float]:
        method = params.get("payment_method", "")
        if method not in BEHAVIOURS and method not in self.methods:
            return _missing(method)
        status = "requires_action" if BEHAVIOURS.get(method) == "authenticate" else "succeeded"
        return 200, {"id": self.new_id("seti"), "object": "setup_intent", "status": status,
                     "customer": params.get("customer"), "usage": params.get("usage"),
                     "payment_method": self.payment_method(method)}, 0

    def payment_intent(self, params: dict[str, str]) -> tuple[int, dict[str, Any], float]:
        method = params.get("payment_method", "")
        behaviour = self.mode or BEHAVIOURS.get(method, "succeed")
        if behaviour == "error":
            return 500, {"error": {"type": "api_error", "message": "Something went wrong."}}, 0
        intent = {
            "id": self.new_id("pi"), "object": "payment_intent",
            "amount": int(params["amount"]), "currency": params["currency"],
            "customer": params.get("customer"), "payment_method": method,
            "description": params.get("description", ""),
            "metadata": _nested(params, "metadata"), "status": "succeeded",
            "next_action": None, "last_payment_error": None,
            "off_session": params.get("off_session") == "true",
        }
        status, hang = 200, 0.0
        error: dict[str, Any] | None = None
        if behaviour in ("decline", "insufficient_funds"):
            error = {"type": "card_error", "code": "card_declined",
                     "decline_code": ("insufficient_funds" if behaviour == "insufficient_funds"
                                      else "generic_decline"),
                     "message": "Your card was declined."}
        elif behaviour == "authenticate" and intent["off_session"]:
            error = {"type": "card_error", "code": "authentication_required",
                     "decline_code": "authentication_required",
                     "message": "Your card was declined. This transaction requires "
                                "authentication."}
        elif behaviour == "authenticate":
            intent["status"] = "requires_action"
            intent["next_action"] = {"type": "redirect_to_url", "redirect_to_url": {
                "url": f"{self.url}/3ds/{intent['id']}",
                "return_url": params.get("return_url", "")}}
        elif behaviour == "timeout":
            hang = HANG
        if error is not None:
            intent.update(status="requires_payment_method", last_payment_error=error)
            status = 402
        with self.lock:
            self.intents[intent["id"]] = intent
        if error is not None:
            return status, {"error": {**error, "payment_intent": intent}}, hang
        return status, intent, hang

    def cancel(self, intent_id: str, params: dict[str, str]
               ) -> tuple[int, dict[str, Any], float]:
        with self.lock:
            intent = self.intents.get(intent_id)
            if intent is None:
                return _missing(intent_id)
            if intent["status"] in ("succeeded", "canceled", "processing"):
                return 400, {"error": {
                    "type": "invalid_request_error", "code": "payment_intent_unexpected_state",
                    "message": f"This PaymentIntent's status is {intent['status']}."}}, 0
            intent.update(status="canceled", next_action=None,
                          cancellation_reason=params.get("cancellation_reason"))
            return 200, json.loads(json.dumps(intent)), 0

    def refund(self, params: dict[str, str]) -> tuple[int, dict[str, Any], float]:
        with self.lock:
            intent = self.intents.get(params.get("payment_intent", ""))
            if intent is None or intent["status"] != "succeeded":
                return 400, {"error": {"type": "invalid_request_error",
                                       "code": "charge_not_refundable",
                                       "message": "This PaymentIntent cannot be refunded."}}, 0
            refunded = sum(r["amount"] for r in self.refunds.values()
                           if r["payment_intent"] == intent["id"])
            amount = int(params.get("amount") or intent["amount"] - refunded)
            if refunded + amount > intent["amount"]:
                return 400, {"error": {"type": "invalid_request_error",
                                       "code": "charge_already_refunded",
                                       "message": "The refund exceeds the charge."}}, 0
            refund = {"id": self.new_id("re"), "object": "refund", "amount": amount,
                      "currency": intent["currency"], "payment_intent": intent["id"],
                      "status": "succeeded", "metadata": _nested(params, "metadata")}
            self.refunds[refund["id"]] = refund
        return 200, refund, HANG if self.mode == "refund_timeout" else 0


def _nested(params: dict[str, str], name: str) -> dict[str, str]:
    prefix = f"{name}["
    return {k[len(prefix):-1]: v for k, v in params.items() if k.startswith(prefix)}


def _list(items: list[dict[str, Any]], url: str) -> dict[str, Any]:
    return {"object": "list", "data": items, "has_more": False, "url": url}


def _missing(what: str) -> tuple[int, dict[str, Any], float]:
    return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                           "message": f"No such object: '{what}'"}}, 0


class _Handler(BaseHTTPRequestHandler):
    fake: FakeStripe

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        params = dict(parse_qsl(body if method == "POST" else split.query,
                                keep_blank_values=True))
        key = self.headers.get("Idempotency-Key")
        with self.fake.lock:
            self.fake.requests.append(Recorded(method, split.path, params, key,
                                               self.headers.get("Authorization", "")))
        replay = method == "POST" and bool(key) and key in self.fake.answers
        status, answer, hang = self.fake.handle(method, split.path, params, key)
        if hang:
            time.sleep(hang)  # bounded: the client has given up by then
        data = json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", f"req_fake{len(self.fake.requests)}")
            if replay:
                self.send_header("Idempotent-Replayed", "true")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")


class FakeStripeServer:
    """The fake on a free port of 127.0.0.1, in a daemon thread; ``stop()`` ends it."""

    def __init__(self, fake: FakeStripe | None = None) -> None:
        self.fake = fake or FakeStripe()
        handler = type("Handler", (_Handler,), {"fake": self.fake})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.fake.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
