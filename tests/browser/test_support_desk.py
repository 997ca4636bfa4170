"""In Chromium: the support desk end to end (issue 14, DESIGN §3 example 3), in English and French
for the customer's pages.

1. Bistro (Pro monthly × 2 since 2026-03-01) on 2026-03-11: its billing contact picks Lite on
   Modify subscription; the summary refuses the downgrade and she sends the prefilled request.
2. The support agent signs in to the console with password and authenticator code (TOTP), opens the
   request, prepares the change: the order summary first (the billing center's engine), then places
   it.
3. Bistro sees the answer on its Support page (resolved), the credit on My account, and the
   receipt (on Transactions and by e-mail, with its PDF).
4. The agent refunds part of the earlier invoice; Bistro downloads the credit note's PDF, whose
   text names the credit note, the invoice it corrects and the amount.
5. The console sign-in locks after repeated wrong passwords, even for the right password and code.
"""

from __future__ import annotations

import io
import re

import pytest
from django.core import mail
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from prorata.accounts.models import AuditEntry
from prorata.billing.models import Document, DocumentKind
from prorata.catalog.services import catalog_load_demo
from prorata.common.formatting import format_money
from prorata.console.models import StaffRefund
from prorata.notifications.outbox import outbox_deliver
from prorata.subscriptions.models import Subscription
from prorata.support.models import SupportRequest, SupportRequestStatus
from prorata_core.money import Money
from prorata_core.periods import utc
from tests.app.subscriptions.support import buy, customer, save_card, staff

pytestmark = pytest.mark.browser

#: The data migrations that make the staff roles (groups and their permissions).
ROLE_MIGRATIONS = [
    ("prorata.accounts.migrations.0002_staff_groups_and_append_only_audit", "create_groups"),
    ("prorata.support.migrations.0002_staff_permissions", "grant"),
    ("prorata.subscriptions.migrations.0008_support_agents_see_orders", "grant"),
    ("prorata.console.migrations.0002_operators_set_the_limits", "grant"),
    ("prorata.api.migrations.0003_operators_manage_operator_keys", "grant"),
    ("prorata.webhooks.migrations.0002_operators_manage_webhooks", "grant"),
]


def staff_roles_restored() -> None:
    """The staff groups as the migrations made them: a transactional test (the live server's)
    flushes every table after it, the migrations' rows included."""
    import importlib

    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    state_apps = MigrationLoader(connection).project_state().apps
    for module, function in ROLE_MIGRATIONS:
        getattr(importlib.import_module(module), function)(state_apps, None)

AGENT_PASSWORD = "a-long-staff-password-1"

WORDS = {
    "en": {"locale": "en-US", "email": "Email", "password": "Password", "sign_in": "Sign in",
           "refused": "A plan downgrade is done by our support team.",
           "send": "Send the support request", "resolved": "resolved",
           "answer": "Done: your subscription is now Lite, 2 license(s), billed monthly.",
           "credit": "Credit balance: {}"},
    "fr": {"locale": "fr-FR", "email": "E-mail", "password": "Mot de passe",
           "sign_in": "Se connecter",
           "refused": "Le passage à une formule inférieure est effectué par notre équipe",
           "send": "Envoyer la demande d'assistance", "resolved": "résolue",
           "answer": "C’est fait : votre abonnement est désormais Lite, 2 licence(s), facturé "
                     "mensuellement.",
           "credit": "Solde créditeur : {}"},
}


def code_of(device: TOTPDevice) -> str:
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def console_sign_in(page, email: str, password: str, code: str) -> None:
    page.goto("/console/login/?next=/console/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.fill("input[name=otp_token]", code)
    page.click("input[type=submit]")


def pdf_text(content: bytes) -> str:
    from pypdf import PdfReader

    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_a_downgrade_asked_from_the_refusal_placed_by_support_then_a_refund(
        browser, live_server, clock, screenshots, language):
    from playwright.sync_api import expect

    words = WORDS[language]
    money = lambda minor: format_money(Money(minor, "EUR"), language)  # noqa: E731
    # given Bistro on Pro monthly × 2 since 2026-03-01 (549.60 € with 20 % VAT), by card
    catalog_load_demo()
    staff_roles_restored()
    clock.set(utc(2026, 3, 1))
    account, jeanne = customer("Bistro Numérique", "FR", "jeanne@bistro.example",
                               currency="EUR", language=language)
    jeanne.language = language
    jeanne.save(update_fields=["language"])
    save_card(account, jeanne)
    first_invoice = buy(account, jeanne, "pro", "monthly", 2).invoice
    assert first_invoice.total == 54960
    agent = staff("sam@prorata.example", "support_agent")
    agent.set_password(AGENT_PASSWORD)
    agent.save()
    device = TOTPDevice.objects.create(user=agent, name="phone", confirmed=True)
    clock.set(utc(2026, 3, 11))
    customer_side = browser.new_context(base_url=live_server.url, locale=words["locale"],
                                        viewport={"width": 1280, "height": 860})
    customer_side.set_default_timeout(15_000)
    bistro = customer_side.new_page()

    # 1. Jeanne signs in, picks Lite: refused, with the prefilled request, which she sends
    bistro.goto("/accounts/login/")
    bistro.get_by_label(words["email"], exact=True).fill("jeanne@bistro.example")
    bistro.get_by_label(words["password"], exact=True).fill("pw")
    bistro.get_by_role("button", name=words["sign_in"], exact=True).click()
    expect(bistro).to_have_url(re.compile(rf"/billing/{account.pk}/$"))
    bistro.goto(f"/billing/{account.pk}/subscriptions/webinar/modify/")
    summary = bistro.locator("#order-summary")
    bistro.locator("label.plan-option", has_text="Lite").click()
    expect(summary).to_contain_text(words["refused"])
    screenshots.take(bistro, f"s1-refused-{language}")
    summary.get_by_role("button", name=words["send"]).click()
    expect(bistro).to_have_url(re.compile(rf"/billing/{account.pk}/support/\d+/$"))
    request = SupportRequest.objects.get(account=account)
    assert (request.kind, request.target_plan, request.target_quantity) == (
        "downgrade_request", "lite", 2)

    # 2. the agent signs in with the second factor and opens the request from the queue
    console = browser.new_context(base_url=live_server.url, locale="en-US",
                                  viewport={"width": 1280, "height": 860})
    console.set_default_timeout(15_000)
    desk = console.new_page()
    console_sign_in(desk, agent.email, AGENT_PASSWORD, code_of(device))
    expect(desk).to_have_url(re.compile(r"/console/$"))
    desk.goto("/console/support/supportrequest/")
    desk.get_by_role("link", name=f"#{request.pk}", exact=True).click()
    expect(desk.locator("#content")).to_contain_text("Asks for: plan lite")
    desk.get_by_role("link", name="Prepare this change (order summary first)").click()
    # the order summary of the billing center's engine: 21 of 31 days of Pro credited
    content = desk.locator("#content")
    expect(content).to_contain_text("-€310.26")  # 458.00 × 21/31 of Pro credited
    expect(content).to_contain_text("€110.00")  # Lite × 2 for a new month
    expect(content).to_contain_text("€240.31")  # the credit it leaves: 372.31 − 132.00
    screenshots.take(desk, f"s2-order-summary-{language}")
    desk.get_by_role("button", name="Place the order").click()
    expect(desk.locator("body")).to_contain_text("Order placed for Bistro Numérique")
    subscription = Subscription.objects.get(account=account)
    assert (subscription.plan.code, subscription.quantity) == ("lite", 2)
    request.refresh_from_db()
    assert request.status == SupportRequestStatus.RESOLVED and request.assignee == agent

    # 3. Bistro sees the answer, the credit and the receipt
    bistro.goto(f"/billing/{account.pk}/support/")
    expect(bistro.locator("main")).to_contain_text(re.compile(words["resolved"], re.I))
    bistro.goto(f"/billing/{account.pk}/support/{request.pk}/")
    expect(bistro.locator("main")).to_contain_text(words["answer"])
    screenshots.take(bistro, f"s3-answer-{language}")
    bistro.goto(f"/billing/{account.pk}/")
    expect(bistro.locator("main")).to_contain_text(words["credit"].format(money(24031)))
    change_invoice = Document.objects.filter(account=account, kind=DocumentKind.INVOICE).latest(
        "id")
    assert change_invoice.pk != first_invoice.pk
    bistro.goto(f"/billing/{account.pk}/transactions/")
    expect(bistro.locator("main")).to_contain_text(change_invoice.number)
    mail.outbox.clear()
    outbox_deliver()
    # the confirmation e-mail (of a change that left credit) carries the receipt's PDF
    to_jeanne = [m for m in mail.outbox if m.to == ["jeanne@bistro.example"]]
    confirmation = next(m for m in to_jeanne if any(
        change_invoice.number in name for name, _content, _kind in m.attachments))
    assert "240" in confirmation.subject and "31" in confirmation.subject
    assert all(content[:4] == b"%PDF" for _name, content, _kind in confirmation.attachments)

    # 4. a partial refund of the earlier invoice; Bistro reads its credit note's PDF
    desk.goto(f"/console/accounts/account/{account.pk}/overview/")
    desk.locator("tr", has_text=first_invoice.number).get_by_role(
        "link", name=re.compile("^Refund")).click()
    desk.fill("#amount", "100.00")
    desk.fill("#reason", "Webinar cancelled by our outage")
    screenshots.take(desk, f"s4-refund-{language}")
    desk.get_by_role("button", name="Refund", exact=True).click()
    expect(desk.locator("body")).to_contain_text("€100.00 refunded to the card")
    note = StaffRefund.objects.get(account=account).credit_note
    assert note.total == -10000 and note.refers_to == first_invoice
    bistro.goto(f"/billing/{account.pk}/transactions/")
    expect(bistro.locator("main")).to_contain_text(note.number)
    pdf = bistro.locator(f'a[href="/billing/{account.pk}/documents/{note.pk}.pdf"]').first
    response = bistro.request.get(pdf.get_attribute("href"))
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    text = pdf_text(response.body())
    assert note.number in text and first_invoice.number in text
    assert ("100.00" if language == "en" else "100,00") in text
    # the credit is unchanged by the refund (the credit note's credit went back to the card)
    bistro.goto(f"/billing/{account.pk}/")
    expect(bistro.locator("main")).to_contain_text(words["credit"].format(money(24031)))

    # 5. the console sign-in locks after repeated wrong passwords
    intruder = browser.new_context(base_url=live_server.url, locale="en-US").new_page()
    for _attempt in range(5):
        console_sign_in(intruder, agent.email, "not-the-password", "123456")
        expect(intruder.locator("body")).to_contain_text("Please enter the correct")
    device.throttle_reset()
    console_sign_in(intruder, agent.email, AGENT_PASSWORD, code_of(device))
    expect(intruder.locator("body")).to_contain_text("Too many failed sign-ins for this address")
    expect(intruder).to_have_url(re.compile(r"/console/login/"))
    screenshots.take(intruder, f"s5-locked-{language}")
    assert AuditEntry.objects.filter(action="auth.lockout").count() == 1
    customer_side.close()
    console.close()
