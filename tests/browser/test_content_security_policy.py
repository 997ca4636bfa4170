"""The pages pass their own Content-Security-Policy (issue 18, deployment hardening): Chromium,
with the policy the server sends, reports no violation (``securitypolicyviolation`` events and
"Refused to …" console messages) on the plans page, the sign-in, the account's pages, the modify
and checkout pages, the bank's challenge and the console, and their scripts still work: htmx
updates the order summary live, the gateway's card form mounts in its frame and takes a card, the
order completes after the challenge."""

from __future__ import annotations

import contextlib
import re

import pytest
from django.test import Client

from prorata.accounts.models import User
from prorata.catalog.services import catalog_load_demo
from prorata.subscriptions.models import Order, OrderStatus
from prorata_core.periods import utc
from tests.app.console_auth import console_login
from tests.app.web.billing_support import acme_world
from tests.browser.test_billing_center import sign_in
from tests.browser.test_checkout_authentication import place_pro_order_with_the_sca_card

pytestmark = pytest.mark.browser

#: Injected before any page script (through the DevTools protocol, which the policy does not
#: govern): every violation the page reports.
LISTEN = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
    {directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample,
     page: location.pathname}));
"""


class Violations:
    def __init__(self, page) -> None:
        self.page = page
        self.console: list[str] = []
        self.found: list[object] = []
        page.add_init_script(LISTEN)
        page.on("console", self._console)

    def _console(self, message) -> None:
        text = message.text
        if "Content Security Policy" in text or text.startswith("Refused to"):
            self.console.append(text)

    def collect(self) -> None:
        """The events of every frame of the page shown (the card form's frame too)."""
        from playwright.sync_api import Error

        for frame in self.page.frames:
            # A frame gone while we looked has nothing left to read.
            with contextlib.suppress(Error):
                self.found += frame.evaluate("() => window.__csp || []")

    def visit(self, url: str) -> None:
        # A violation is reported while the page loads (its scripts, frames and styles): by the
        # load event every one is in.
        self.page.goto(url, wait_until="load")
        self.collect()

    def assert_none(self) -> None:
        self.collect()
        assert (self.found, self.console) == ([], [])


@pytest.fixture
def acme(clock):
    catalog_load_demo()
    world = acme_world(clock)
    clock.set(utc(2026, 4, 1))
    return world


def test_the_pages_pass_their_policy_and_their_scripts_run(page, live_server, acme):
    from playwright.sync_api import expect

    seen = Violations(page)
    response = page.goto("/plans/")
    policy = response.headers["content-security-policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split("; ")}
    assert directives["script-src"] == ["'self'"]  # what the browser enforces below
    seen.collect()
    seen.visit("/accounts/login/")
    sign_in(page, "alice@acme.example")
    account = acme.account.pk
    for url in (f"/billing/{account}/", f"/billing/{account}/transactions/",
                f"/billing/{account}/payment-methods/", "/profile/", "/api/v1/docs"):
        seen.visit(url)
    expect(page.locator("#swagger-ui")).to_contain_text("Prorata API")  # swagger-ui ran
    # The modify page's htmx summary, the checkout, the card form's frame, the bank's challenge.
    place_pro_order_with_the_sca_card(page, account)
    seen.collect()
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: your order is complete")
    expect(page.locator("main")).to_contain_text(re.compile(r"Amount paid\s*\$2,985\.86"))
    assert Order.objects.filter(account=acme.account).latest("id").status == OrderStatus.PAID
    seen.assert_none()


def test_the_console_passes_its_policy(browser, live_server, acme):
    """The console (Django's admin) as a verified superuser (every page open; the staff groups
    are flushed by the live server's transactional database): its own scripts are files too."""
    agent = User.objects.create_user("root@prorata.example", "pw", is_staff=True,
                                     is_superuser=True)
    client = console_login(Client(), agent)
    context = browser.new_context(base_url=live_server.url, locale="en-US")
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                          "url": live_server.url}])
    page = context.new_page()
    try:
        seen = Violations(page)
        for url in ("/console/", "/console/accounts/account/",
                    f"/console/accounts/account/{acme.account.pk}/change/",
                    f"/console/accounts/account/{acme.account.pk}/overview/",
                    "/console/billing/document/", "/console/api/operatorkey/add/"):
            seen.visit(url)
        assert page.locator("#content").count() == 1
        seen.assert_none()
    finally:
        context.close()
