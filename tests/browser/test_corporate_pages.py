"""A corporate account's pages (Globex: its advisor named, a request to them, no card offered)
on a 390 px phone and a 1280 px desktop, English and French: no horizontal scroll and no serious
or critical axe-core violation, as every customer page (test_customer_pages.py)."""

from __future__ import annotations

import json

import pytest

from prorata.billing.models import Document, DocumentKind
from prorata.catalog.services import catalog_load_demo
from prorata_core.periods import utc
from tests.app.web.billing_support import globex_world
from tests.browser.test_customer_pages import check_all, signed_in_state
from tests.browser.test_support_desk import staff_roles_restored

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("language", ["en", "fr"])
def test_a_corporate_accounts_pages_fit_a_phone_and_pass_axe(browser, live_server, clock,
                                                             language):
    catalog_load_demo()
    staff_roles_restored()
    globex = globex_world(clock)  # Enterprise annual × 20, invoiced net 30, still open
    clock.set(utc(2026, 3, 11))
    invoice = Document.objects.get(account=globex.account, kind=DocumentKind.INVOICE)
    storage = signed_in_state(browser, live_server, "hans@globex.example")
    base = globex.url
    failures = check_all(browser, live_server, [
        base, f"{base}subscriptions/webinar/modify/", f"{base}payment-methods/",
        f"{base}support/", f"{base}invoices/{invoice.pk}/pay/"], language, storage)
    assert failures == {}, json.dumps(failures, indent=1, ensure_ascii=False)
