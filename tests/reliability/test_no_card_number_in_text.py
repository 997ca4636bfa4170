"""A card number typed into a free-text field (issue 18, plan T22): a customer pastes one into a
support message, a legal name, a billing address, a cancellation reason, a webinar title; a staff
member into an answer or a credit reason; an integrator into a key's or an endpoint's name. Each
is submitted through its real page (or its service, for the console's configuration forms), in
three shapes (spaced, dashed, plain); then the stored rows, the pages shown afterwards, the
e-mails delivered and the log lines written hold its last four digits only, while a 16-digit
number that fails the Luhn check and an invoice number stay as typed. I11 over every table after
each test (the suite's ``check_all``) is the net under all of it.
"""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client, RequestFactory

from prorata.accounts.models import Account, AuditEntry, User
from prorata.api.services import api_token_create, operator_key_create
from prorata.common.cardnumbers import card_numbers_in, mask_card_numbers
from prorata.common.reporting import CardSafeExceptionReporterFilter
from prorata.common.requestlog import ContextFilter
from prorata.console.models import CreditAdjustment
from prorata.jobs.periodic import deliver_mail
from prorata.licenses.entitlements import entitlement_key_create
from prorata.licenses.services import invitation_accept, license_assign, member_invite
from prorata.notifications.models import OutboxMessage
from prorata.subscriptions.models import SubscriptionEvent
from prorata.support.models import SupportMessage, SupportRequest
from prorata.webhooks.services import webhook_endpoint_create
from prorata.webinars.models import Registration, Webinar
from tests.app.console_auth import console_login
from tests.app.licenses.support import acme
from tests.app.subscriptions.support import buy, card, customer, staff

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_catalog")]

#: The test cards as a customer pastes them: spaced, dashed, plain (Visa, Mastercard, Visa).
SHAPES = {"spaced": ("4242 4242 4242 4242", "4242"), "dashed": ("5555-5555-5555-4444", "4444"),
          "plain": ("4000056655665556", "5556")}
#: Must survive: a 16-digit number whose check digit is wrong, an invoice number.
NOT_A_CARD, INVOICE_NUMBER = "4242 4242 4242 4241", "2026-000123"


def typed(pan: str) -> str:
    return f"My card {pan} was charged twice (invoice {INVOICE_NUMBER}, order {NOT_A_CARD})"


def stored(last4: str) -> str:
    return f"My card [•••• {last4}] was charged twice (invoice {INVOICE_NUMBER}, order {NOT_A_CARD})"


@pytest.fixture
def log_output(settings):
    """What the product's log handler (the one ``LOGGING`` configures, with its filter) writes,
    every level from DEBUG."""
    root = logging.getLogger()
    handler = next(h for h in root.handlers
                   if any(isinstance(f, ContextFilter) for f in h.filters))
    stream = io.StringIO()
    previous_stream, previous_level = handler.setStream(stream), root.level
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        handler.setStream(previous_stream)
        root.setLevel(previous_level)


def log_lines(stream: io.StringIO) -> str:
    """The log's lines as a reader reads them (JSON lines decoded: "•" is escaped in them)."""
    lines = []
    for line in stream.getvalue().splitlines():
        try:
            lines.append(" ".join(str(value) for value in json.loads(line).values()))
        except ValueError:
            lines.append(line)
    assert lines, "the log handler heard nothing"
    return "\n".join(lines)


def clean(text: str, where: str) -> None:
    """No card number in ``text`` (non-breaking spaces read as spaces, as a reader sees them)."""
    text = text.replace("\u00a0", " ").replace("&#x27;", "'")
    assert not card_numbers_in(text), (where, card_numbers_in(text), text[:3000])


def mails_clean(last4: str, *, expected: int) -> list:
    """Deliver every queued e-mail, then: none holds a card number; return them."""
    deliver_mail()
    assert len(mail.outbox) >= expected
    for message in mail.outbox:
        for part in (message.subject, message.body, *(c for c, _t in message.alternatives)):
            clean(part, message.subject)
    return mail.outbox


def signed_in(user) -> Client:
    return console_login(Client(), user)


@pytest.mark.parametrize("shape", SHAPES)
def test_a_support_thread_keeps_only_the_last_four(shape, clock, log_output):
    pan, last4 = SHAPES[shape]
    account, bea = customer("Bistro", "FR", "bea@bistro.example", language="fr")
    buy(account, bea, "pro", "monthly", 1, card_token=card())
    mail.outbox.clear()
    client = signed_in(bea)
    base = f"/billing/{account.pk}/support/"
    # the customer opens a request with the number in it, then replies with it again
    response = client.post(base, {"kind": "billing_question", "message": typed(pan)})
    assert response.status_code == 302
    request = SupportRequest.objects.get()
    clock.advance(timedelta(minutes=5))
    assert client.post(f"{base}{request.pk}/", {"message": f"Again: {pan}"}).status_code == 302
    # staff answer in the console, quoting the number back
    agent = staff("sam@prorata.example", "support_agent")
    console = signed_in(agent)
    change = f"/console/support/supportrequest/{request.pk}/change/"
    assert console.post(change, {"action": "reply",
                                 "message": f"We see {pan} on our side."}).status_code == 302
    bodies = list(SupportMessage.objects.order_by("id").values_list("body", flat=True))
    assert bodies == [stored(last4), f"Again: [•••• {last4}]",
                      f"We see [•••• {last4}] on our side."]
    audited = AuditEntry.objects.filter(action__startswith="support_request.").order_by("id")
    assert [entry.after["message"] for entry in audited] == bodies
    for row in OutboxMessage.objects.filter(template__startswith="support"):
        clean(repr(row.context), row.template)
    # the pages both sides read afterwards
    thread = client.get(f"{base}{request.pk}/").content.decode()
    assert f"[•••• {last4}]" in thread and INVOICE_NUMBER in thread and NOT_A_CARD in thread
    clean(thread, "customer's thread")
    clean(console.get(change).content.decode(), "console thread")
    clean(console.get("/console/support/supportrequest/").content.decode(), "console queue")
    # the e-mails: to staff twice, to the customer once
    sent = mails_clean(last4, expected=3)
    assert any(f"[•••• {last4}]" in message.body for message in sent)
    assert any(NOT_A_CARD in message.body for message in sent)
    clean(log_lines(log_output), "log")


def test_billing_details_signup_and_cancel_reason(clock, log_output):
    pan, last4 = SHAPES["dashed"]
    # sign-up: the company name
    visitor = Client()
    response = visitor.post("/accounts/signup/", {
        "company": f"Globex {pan}", "country": "FR", "email": "zoe@globex.example",
        "password1": "a long pass phrase 42", "password2": "a long pass phrase 42"})
    assert "Check your e-mail" in response.content.decode()
    assert Account.objects.get(memberships__user__email="zoe@globex.example").name == \
        f"Globex [•••• {last4}]"
    # billing details: legal name and address
    account, bea = customer("Bistro", "FR", "bea@bistro.example")
    buy(account, bea, "pro", "monthly", 1, card_token=card())
    client = signed_in(bea)
    details = f"/billing/{account.pk}/details/"
    response = client.post(details, {
        "name": f"Bistro {SHAPES['plain'][0]}", "country": "FR", "vat_number": "",
        "billing_address": f"1 rue de Rivoli\n{SHAPES['spaced'][0]}\n75001 Paris",
        "billing_email": "", "time_zone": "Europe/Paris"})
    assert response.status_code == 302, response.content.decode()[:2000]
    account.refresh_from_db()
    assert account.name == "Bistro [•••• 5556]"
    assert account.billing_address == "1 rue de Rivoli\n[•••• 4242]\n75001 Paris"
    clean(client.get(details).content.decode(), "details page")
    # a cancellation reason
    response = client.post(f"/billing/{account.pk}/subscriptions/webinar/cancel-renewal/",
                           {"reason": typed(pan)})
    assert response.status_code == 302
    event = SubscriptionEvent.objects.filter(kind="renewal_stopped").get()
    assert event.after["reason"] == stored(last4)
    assert AuditEntry.objects.get(action="subscription.cancel_renewal").after["reason"] == \
        stored(last4)
    clean(client.get(f"/billing/{account.pk}/").content.decode(), "billing center")
    mails_clean(last4, expected=2)  # the sign-up link and the cancellation
    clean(log_lines(log_output), "log")


def test_a_card_number_as_a_tax_number_is_refused(clock):
    """Outside the EU the tax number is printed as typed (no format to check): a masked one
    would print a wrong number, so a card number there is refused, in the reader's language."""
    account, ann = customer("Initech", "US", "ann@initech.example", currency="USD")
    client = signed_in(ann)
    details = f"/billing/{account.pk}/details/"
    form = {"name": "Initech", "country": "US", "billing_address": "", "billing_email": "",
            "time_zone": "America/New_York"}
    for pan, _last4 in SHAPES.values():
        response = client.post(details, {**form, "vat_number": pan})
        assert response.status_code == 422
        assert "This looks like a card number, not a tax number" in response.content.decode()
    french = client.post(details, {**form, "vat_number": SHAPES["plain"][0]},
                         HTTP_ACCEPT_LANGUAGE="fr")
    assert "Ceci ressemble à un numéro de carte" in french.content.decode()
    account.refresh_from_db()
    assert account.vat_number == ""
    assert client.post(details, {**form, "vat_number": "12-3456789"}).status_code == 302
    account.refresh_from_db()
    assert account.vat_number == "12-3456789"  # an EIN, as typed


def test_staff_reasons_keep_only_the_last_four(clock, log_output):
    pan, last4 = SHAPES["spaced"]
    account, bea = customer("Bistro", "FR", "bea@bistro.example")
    buy(account, bea, "pro", "monthly", 1, card_token=card())
    console = signed_in(staff("sam@prorata.example", "support_agent"))
    url = f"/console/console/creditadjustment/new/{account.pk}/"
    key = re.search(r'name="key" value="(\w+)"', console.get(url).content.decode()).group(1)
    response = console.post(url, {"amount": "10.00", "reason": typed(pan), "key": key})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert CreditAdjustment.objects.get().reason == stored(last4)
    assert AuditEntry.objects.filter(action__startswith="credit").latest("id").after["reason"] \
        == stored(last4)
    clean(console.get(response["Location"]).content.decode(), "account overview")
    clean(log_lines(log_output), "log")


def test_webinars_keys_endpoints_and_invitations(clock, log_output):
    pan, last4 = SHAPES["plain"]
    world = acme(clock)
    license_assign(actor=world.alice, account=world.account,
                   subscription_id=world.subscription.pk,
                   member_id=world.membership(world.carol).pk)
    # a webinar title, through the schedule page; a participant's name, through the public page
    client = world.client(world.carol)
    response = client.post(f"/billing/{world.account.pk}/webinars/new/", {
        "title": f"Launch {pan}", "start": "2026-03-20T15:00", "duration_minutes": "45",
        "time_zone": "Europe/Paris"})
    assert response.status_code == 302, response.content.decode()[:2000]
    webinar = Webinar.objects.get()
    assert webinar.title == f"Launch [•••• {last4}]"
    public = Client()
    page = f"/webinars/{webinar.public_id}/"
    assert public.post(page, {"name": f"Vic {pan}", "email": "vic@example.com"}).status_code \
        in (200, 302)
    assert Registration.objects.get().name == f"Vic [•••• {last4}]"
    clean(public.get(page).content.decode(), "public webinar page")
    clean(client.get(f"/billing/{world.account.pk}/webinars/").content.decode(), "webinars")
    # names of keys and endpoints, a description, an invited person's names (services)
    operator = User.objects.create_superuser("ops@prorata.example", "pw")
    token, _secret = api_token_create(user=world.alice, name=f"CI {pan}")
    key, _secret = operator_key_create(name=f"ERP {pan}", scope="read_only", actor=operator)
    entitlement, _secret = entitlement_key_create(name=f"Player {pan}", actor=operator)
    endpoint = webhook_endpoint_create(actor=operator, url="https://hooks.example/prorata",
                                       event_types=["invoice.paid"],
                                       description=typed(pan)).endpoint
    assert (token.name, key.name, entitlement.name) == (
        f"CI [•••• {last4}]", f"ERP [•••• {last4}]", f"Player [•••• {last4}]")
    assert endpoint.description == stored(last4)
    _invitation, link = member_invite(actor=world.bob, account=world.account,
                                     email="dan@acme.example")
    invitation_accept(token=link.rstrip("/").rsplit("/", 1)[-1], password="a long pass 42",
                      first_name=f"Dan {pan}", last_name=pan)
    dan = User.objects.get(email="dan@acme.example")
    assert (dan.first_name, dan.last_name) == (f"Dan [•••• {last4}]", f"[•••• {last4}]")
    mails_clean(last4, expected=1)
    clean(log_lines(log_output), "log")


def test_the_log_filter_masks_what_a_service_did_not(log_output):
    """The last guard: a record quoting a card number (an error repeating a refused value, a
    database error quoting a row) is written with the last four only; other numbers as they are."""
    logger = logging.getLogger("prorata.test")
    logger.warning("refused %r", typed("4242-4242-4242-4242"), extra={"field": "4242424242424242"})
    try:
        raise ValueError(f"value {SHAPES['spaced'][0]} is too long")
    except ValueError:
        logger.exception("saving failed")
    written = log_lines(log_output)
    assert "[•••• 4242]" in written and INVOICE_NUMBER in written and NOT_A_CARD in written
    assert "is too long" in written  # the traceback is kept, masked
    clean(written, "log")


def test_error_reports_mask_post_data_and_frame_variables():
    request = RequestFactory().post("/billing/1/support/", {"message": typed("4242424242424242")})
    reporter = CardSafeExceptionReporterFilter()
    assert reporter.get_post_parameters(request)["message"] == stored("4242")
    message = typed("5555 5555 5555 4444")  # a local of the frame below
    try:
        raise RuntimeError(f"boom after {len(message)} characters")
    except RuntimeError as error:
        frame = error.__traceback__.tb_frame
    variables = dict(reporter.get_traceback_frame_variables(request, frame))
    assert variables["message"] == stored("4444")


@pytest.mark.parametrize(("text", "expected"), [
    ("4242 4242 4242 4242", "[•••• 4242]"), ("4242-4242-4242-4242", "[•••• 4242]"),
    ("4242424242424242", "[•••• 4242]"), ("3782 822463 10005", "[•••• 0005]"),
    ("4242424242424242 1234 5678 9012", "[•••• 4242] 1234 5678 9012"),
    (NOT_A_CARD, NOT_A_CARD), (INVOICE_NUMBER, INVOICE_NUMBER),
    ("+33 6 12 34 56 78", "+33 6 12 34 56 78"), ("FR40303265045", "FR40303265045"),
    ("€1,234,567.89", "€1,234,567.89"), ("hash a4242424242424242", "hash a4242424242424242"),
    ("٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢", "[•••• ٤٢٤٢]"), ("", ""),
])
def test_the_scrubber(text, expected):
    assert mask_card_numbers(text) == expected
    assert not card_numbers_in(mask_card_numbers(text))
