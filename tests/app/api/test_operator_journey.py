"""The operator's journey over HTTP (issue 17): create a customer (its billing contact invited by
e-mail) → a free trial → a subscription → a change (a downgrade, allowed at staff level, with the
billing center's proration) → renewal off and on → invoices, credit notes, payments and the
ledger, paginated to the end, and PDFs. Every write replays under its Idempotency-Key and is
audited with the key and the IP."""

from __future__ import annotations

from datetime import timedelta

import pytest

from prorata.accounts.models import Account, AuditEntry
from prorata.billing.models import Document, DocumentKind, LedgerEntry, Payment
from prorata.licenses.services import invitation_accept
from prorata.notifications.models import OutboxMessage
from prorata.subscriptions.models import Order, Subscription
from tests.app.api.conftest import ApiClient, token_for
from tests.app.api.operator_support import NEW_CUSTOMER, OperatorClient, key_for

pytestmark = pytest.mark.django_db

IP = "203.0.113.7"


def item(plan: str, quantity: int, cycle: str = "monthly") -> dict:
    return {"product_code": "webinar", "plan_code": plan, "cycle_code": cycle,
            "quantity": quantity}


def walk(api: OperatorClient, url: str, limit: int = 1) -> list[dict]:
    """Every row of a list, page by page, checking the envelope on the way."""
    rows, cursor, pages = [], None, 0
    while True:
        query = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = api.get(url, query_params=query)
        assert page.status_code == 200, page.content
        body = page.json()
        assert set(body) == {"data", "has_more", "next_cursor"}
        assert len(body["data"]) <= limit
        rows += body["data"]
        pages += 1
        cursor = body["next_cursor"]
        assert body["has_more"] is (cursor is not None)
        if cursor is None:
            return rows
        assert pages < 100


def test_the_operator_journey(clock, demo_catalog):
    key, secret = key_for()
    api = OperatorClient(secret, ip=IP)

    # Create the customer: the account, and its billing contact invited by e-mail (in French).
    created = api.post("/api/v1/customers", NEW_CUSTOMER | {"vat_number": "FR40303265045"},
                       key="create-acme")
    assert created.status_code == 201, created.content
    customer = created.json()
    cid = customer["id"]
    assert (customer["name"], customer["country"], customer["language"],
            customer["time_zone"], customer["currency"]) == (
        "Acme SAS", "FR", "fr", "Europe/Paris", "")
    assert customer["contacts"] == [{
        "email": "jane@acme.example", "status": "invited", "user_id": None,
        "roles": ["billing_contact", "admin"], "invited_until": "2026-03-18T00:00:00Z"}]
    invitation = OutboxMessage.objects.get(template="member_invitation")
    assert (invitation.to, invitation.language) == ("jane@acme.example", "fr")
    assert invitation.context["inviter"] == "Prorata Webinars SAS"  # the seller, not the key
    # The same request again under the same key answers the first answer; nothing is made.
    again = api.post("/api/v1/customers", NEW_CUSTOMER | {"vat_number": "FR40303265045"},
                     key="create-acme")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == customer
    conflict = api.post("/api/v1/customers", NEW_CUSTOMER, key="create-acme")
    assert conflict.status_code == 409 and conflict.json()["code"] == "idempotency_conflict"
    missing = api.post("/api/v1/customers", NEW_CUSTOMER, key=None)
    assert missing.status_code == 400 and missing.json()["code"] == "idempotency_key_required"
    assert Account.objects.count() == 1

    # Find it by the invited address, and update it.
    found = api.get("/api/v1/customers", query_params={"email": "JANE@acme.example"}).json()
    assert [c["id"] for c in found["data"]] == [cid] and found["has_more"] is False
    assert api.get("/api/v1/customers", query_params={"email": "x@y.example"}).json()[
        "data"] == []
    patched = api.patch(f"/api/v1/customers/{cid}", {"billing_email": "Compta@Acme.example"})
    assert patched.status_code == 200, patched.content
    assert patched.json()["billing_email"] == "compta@acme.example"
    bad_vat = api.patch(f"/api/v1/customers/{cid}", {"vat_number": "FR00"})
    assert bad_vat.status_code == 422
    assert Account.objects.get().vat_number == "FR40303265045"

    # A free trial.
    trial = api.post(f"/api/v1/customers/{cid}/trials", {"product_code": "webinar"})
    assert trial.status_code == 201, trial.content
    assert (trial.json()["status"], trial.json()["plan"]) == ("trialing", "free_trial")
    twice = api.post(f"/api/v1/customers/{cid}/trials", {"product_code": "webinar"})
    assert twice.status_code == 422

    # The contact joins from the e-mail and saves a card in the billing center.
    token = invitation.context["url"].rstrip("/").rsplit("/", 1)[1]
    jane = invitation_accept(token=token, password="correct horse battery").user
    from prorata.payments.sandbox import sandbox_token

    card = ApiClient(token_for(jane)).post(f"/api/v1/accounts/{cid}/payment-methods", {
        "token": sandbox_token()})
    assert card.status_code == 201, card.content

    # Subscribe: quote, then place exactly that quote.
    clock.advance(timedelta(days=3))
    quote = api.post(f"/api/v1/customers/{cid}/quote", {"items": [item("pro", 3)]})
    assert quote.status_code == 200, quote.content
    summary = quote.json()
    assert summary["items"][0]["kind"] == "purchase"
    stale = api.post(f"/api/v1/customers/{cid}/orders",
                     {"items": [item("pro", 4)], "expected": summary["expected"]})
    assert stale.status_code == 409 and stale.json()["code"] == "quote_changed"
    assert "summary" in stale.json()["params"]
    assert not Order.objects.exists()
    order_body = {"items": [item("pro", 3)], "expected": summary["expected"]}
    placed = api.post(f"/api/v1/customers/{cid}/orders", order_body, key="buy-pro")
    assert placed.status_code == 201, placed.content
    bought = placed.json()
    assert bought["status"] == "paid"
    assert bought["amount_charged"] == summary["totals"]["amount_due"]
    assert bought["invoice"]["pdf_url"] == (
        f"/api/v1/customers/{cid}/invoices/{bought['invoice']['id']}/pdf")
    replay = api.post(f"/api/v1/customers/{cid}/orders", order_body, key="buy-pro")
    assert replay.json() == bought and replay["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1 and Payment.objects.count() == 1

    # A downgrade ten days later: refused to the customer, allowed at staff level, with the
    # same proration (a credit for the unused time of Pro, a full new period of Lite).
    clock.advance(timedelta(days=10))
    as_jane = ApiClient(token_for(jane))
    refused = as_jane.post(f"/api/v1/accounts/{cid}/quote", item("lite", 2))
    assert refused.status_code == 409 and refused.json()["code"] == "downgrade_needs_support"
    change = api.post(f"/api/v1/customers/{cid}/quote", {"items": [item("lite", 2)]}).json()
    assert change["items"][0]["kind"] == "change"
    lines = change["items"][0]["lines"]
    assert [line["kind"] for line in lines] == ["credit", "charge"]
    assert lines[0]["amount"]["amount"] < 0 and lines[0]["ratio"] != "1/1"
    changed = api.post(f"/api/v1/customers/{cid}/orders",
                       {"items": [item("lite", 2)], "expected": change["expected"]})
    assert changed.status_code == 201, changed.content
    assert len(changed.json()["credit_notes"]) == 1
    subscription = Subscription.objects.get()
    assert (subscription.plan.code, subscription.quantity) == ("lite", 2)

    # Renewal off, and on again.
    off = api.post(f"/api/v1/customers/{cid}/subscriptions/webinar/cancel-renewal",
                   {"reason": "Budget review"})
    assert off.status_code == 200 and off.json()["auto_renew"] is False
    on = api.post(f"/api/v1/customers/{cid}/subscriptions/webinar/resume-renewal")
    assert on.status_code == 200 and on.json()["auto_renew"] is True

    # Lists, page by page to the end: exactly the documents, payments and entries there are.
    invoices = walk(api, f"/api/v1/customers/{cid}/invoices")
    expected = Document.objects.filter(account_id=cid, kind=DocumentKind.INVOICE,
                                       number__isnull=False).order_by("-issued_at", "-id")
    assert [d["number"] for d in invoices] == [d.number for d in expected]
    assert len(invoices) >= 2
    notes = walk(api, f"/api/v1/customers/{cid}/credit-notes")
    assert len(notes) == 1 and notes[0]["total"]["amount"] < 0
    assert walk(api, f"/api/v1/customers/{cid}/payments") and all(
        p["status"] == "succeeded" for p in walk(api, f"/api/v1/customers/{cid}/payments", 2))
    ledger = walk(api, f"/api/v1/customers/{cid}/ledger", limit=2)
    assert len(ledger) == LedgerEntry.objects.filter(account_id=cid).count()
    assert {e["kind"] for e in ledger} == {"invoice", "payment", "credit_note"}
    subscriptions = walk(api, f"/api/v1/customers/{cid}/subscriptions")
    assert [s["plan"] for s in subscriptions] == ["lite"]

    # One invoice, its PDF (in the customer's language by default, or English), a credit note.
    first = invoices[-1]
    detail = api.get(f"/api/v1/customers/{cid}/invoices/{first['id']}").json()
    assert detail["lines"] and detail["buyer"]["name"] == "Acme SAS"
    for query in ({}, {"language": "en"}):
        pdf = api.get(first["pdf_url"], query_params=query)
        assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
    assert api.get(f"/api/v1/customers/{cid}/credit-notes/{first['id']}").status_code == 404
    note = api.get(f"/api/v1/customers/{cid}/credit-notes/{notes[0]['id']}").json()
    assert note["refers_to"] == first["number"]
    assert api.get(note["pdf_url"]).status_code == 200

    # Every write is audited with the key and the IP; the engine's entries name the key too.
    writes = AuditEntry.objects.filter(action__startswith="operator_api.")
    assert sorted(writes.values_list("action", flat=True)) == sorted([
        "operator_api.customer.create", "operator_api.customer.update",
        "operator_api.subscription.start_trial", "operator_api.order.place",
        "operator_api.order.place", "operator_api.subscription.cancel_renewal",
        "operator_api.subscription.resume_renewal"])
    principal = key.principal.email
    assert principal == f"key-{key.prefix}@operator-keys.invalid"
    for entry in writes:
        assert (entry.actor_email, entry.ip, entry.after["key"]) == (principal, IP, key.prefix)
        assert entry.account_id == cid
    orders = AuditEntry.objects.filter(action="staff.order.place")
    assert orders.count() == 2 and {e.actor_email for e in orders} == {principal}


def test_an_order_without_a_saved_card_is_refused_and_writes_nothing(clock, demo_catalog):
    _key, secret = key_for()
    api = OperatorClient(secret)
    cid = api.post("/api/v1/customers", NEW_CUSTOMER).json()["id"]
    summary = api.post(f"/api/v1/customers/{cid}/quote", {"items": [item("lite", 1)]}).json()
    refused = api.post(f"/api/v1/customers/{cid}/orders",
                       {"items": [item("lite", 1)], "expected": summary["expected"]},
                       key="no-card")
    assert refused.status_code == 422, refused.content
    assert refused.json()["code"] == "payment_method_required"
    assert not Order.objects.exists() and not Document.objects.exists()
    assert not AuditEntry.objects.filter(action="operator_api.order.place").exists()
    # Nothing was kept under the key: once the customer has a card, the same key works.
    from prorata.payments.services import payment_method_add
    from tests.app.subscriptions.support import card

    payment_method_add(account=Account.objects.get(pk=cid), token=card(), actor=None)
    placed = api.post(f"/api/v1/customers/{cid}/orders",
                      {"items": [item("lite", 1)], "expected": summary["expected"]},
                      key="no-card")
    assert placed.status_code == 201, placed.content
