"""Cancel renewal / Resume renewal through the API (S2), with the same rules as the Options menu."""

from __future__ import annotations

import pytest

from prorata.notifications.models import OutboxMessage
from prorata.subscriptions.models import Subscription
from tests.app.api.billing_support import acme_with_standard_annual

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def catalog(demo_catalog):
    return demo_catalog


def test_cancel_then_resume_renewal_with_a_confirmation_e_mail_each(clock):
    acme, _alice, api = acme_with_standard_annual(clock)
    base = f"/api/v1/accounts/{acme.pk}/subscriptions/webinar"
    OutboxMessage.objects.all().delete()
    cancelled = api.post(f"{base}/cancel-renewal")
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["auto_renew"] is False
    assert not Subscription.objects.get(account=acme).auto_renew
    again = api.post(f"{base}/cancel-renewal")
    assert again.status_code == 200 and again.json()["auto_renew"] is False  # idempotent
    resumed = api.post(f"{base}/resume-renewal")
    assert resumed.status_code == 200 and resumed.json()["auto_renew"] is True
    assert sorted(OutboxMessage.objects.values_list("template", flat=True)) == [
        "renewal_cancelled", "renewal_resumed"]


def test_no_subscription_to_the_product_is_a_clear_error(clock):
    acme, _alice, api = acme_with_standard_annual(clock)
    response = api.post(f"/api/v1/accounts/{acme.pk}/subscriptions/storage/cancel-renewal")
    assert response.status_code == 422
    assert response.json()["message"] == "There is no subscription to this product."


def test_a_quote_by_token_reads_the_account_and_membership_with_the_token(clock):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    acme, _alice, api = acme_with_standard_annual(clock)
    body = {"product_code": "webinar", "plan_code": "pro", "cycle_code": "annual", "quantity": 2}
    assert api.post(f"/api/v1/accounts/{acme.pk}/quote", body).status_code == 200  # warms up
    with CaptureQueriesContext(connection) as captured:
        response = api.post(f"/api/v1/accounts/{acme.pk}/quote", body)
    assert response.status_code == 200 and response.json()["totals"]["amount_due"]["decimal"]
    queries = [query["sql"] for query in captured.captured_queries]
    # one query for the token, its user, and the user's accounts with their memberships ...
    assert sum("accounts_membership" in sql for sql in queries) == 1
    assert sum("accounts_account" in sql for sql in queries) == 1
    # ... and none for the account the URL names (the movable clock and, with it, an uncached
    # catalog account for the other queries here; in production a quote is two queries)
    assert not any(sql.lstrip().startswith("SELECT a.") for sql in queries)
