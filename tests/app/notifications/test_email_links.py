"""Every e-mail carries its links (issue 15): a journey through the services sends every kind of
e-mail a customer gets (receipts of a purchase, a change and a renewal by the billing run, a
failed renewal charge and its retries, the expiry at the end of dunning, an invitation, support
messages, a renewal cancelled and resumed, a change that leaves credit, credit granted and a
refund by staff, a password reset, an e-mail change and a sign-up confirmation); every link of the text
and HTML parts of each, in English and French, is opened with the test client signed in as the
reader (one-time links anonymously), following redirects, and must end on a 200. An e-mail without
a link to ``PRORATA_BASE_URL``, a link elsewhere, or a link that does not open fails the test."""

from __future__ import annotations

import html
import re

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse

from prorata.accounts.models import User
from prorata.console.models import StaffRefundStatus
from prorata.console.services import credit_adjust, refund_request
from prorata.jobs.billing_run import bill_run
from prorata.jobs.periodic import deliver_mail
from prorata.licenses.services import member_invite
from prorata.notifications.models import OutboxMessage, OutboxStatus
from prorata.notifications.outbox import outbox_deliver, render_message
from prorata.payments.models import PaymentMethod
from prorata.payments.services import payment_method_add
from prorata.subscriptions.services import (
    subscription_cancel_renewal,
    subscription_resume_renewal,
)
from prorata.support.services import (
    support_message_post,
    support_request_answer,
    support_request_create,
)
from prorata_core.money import Money
from prorata_core.periods import utc
from tests.app.console_auth import console_login
from tests.app.subscriptions.support import DECLINED_CARD, buy, card, customer, staff
from tests.app.web.conftest import PASSWORD

pytestmark = pytest.mark.django_db

_TEXT_URL = re.compile(r"https?://[^\s<>\"']+")
_HREF = re.compile(r"""href=["']([^"']+)["']""")

#: The billing e-mails the journey must send (a template missing from the outbox fails the test).
OUTBOX_TEMPLATES = {"receipt", "payment_failed", "payment_requires_action",
                    "subscription_expired", "member_invitation",
                    "support_reply", "support_to_staff", "renewal_cancelled", "renewal_resumed",
                    "credit_created", "credit_granted"}
#: The account e-mails, sent at once (not through the outbox), by subject.
ACCOUNT_SUBJECTS = {"Reset your Prorata password", "Confirm your new Prorata e-mail address",
                    "Confirm your e-mail address to open your Prorata account"}


def one_time_prefixes() -> tuple[str, ...]:
    """Paths of links that stand for themselves (opened anonymously, as from another device)."""
    invitation = reverse("licenses:invitation", args=["0.x"]).rsplit("0.x", 1)[0]
    return ("/accounts/reset/", "/accounts/email/confirm/", "/accounts/signup/confirm/",
            invitation)


def links(message: mail.EmailMessage) -> tuple[list[str], list[str] | None]:
    """Every URL of the text part; every href (and bare URL) of the HTML part, None without one."""
    text = [url.rstrip(".,;:)") for url in _TEXT_URL.findall(message.body)]
    html_links = None
    for content, mimetype in getattr(message, "alternatives", []):
        if mimetype == "text/html":
            words = re.sub(r"<[^>]+>", " ", content)
            html_links = [html.unescape(url) for url in _HREF.findall(content)] + [
                html.unescape(url).rstrip(".,;:)") for url in _TEXT_URL.findall(words)]
    return text, html_links


def assert_no_dangling_colon(message: mail.EmailMessage) -> None:
    """A sentence ending in a colon is followed by what it announces (not by nothing or the
    signature)."""
    lines = [line.strip() for line in message.body.splitlines()]
    for index, line in enumerate(lines):
        if line.endswith(":"):
            rest = [later for later in lines[index + 1:] if later]
            assert rest and not rest[0].startswith("--") and "billing team" not in rest[0], (
                f"{message.subject!r}: {line!r} announces nothing")


def open_link(url: str, reader: str, agent: User) -> None:
    base = settings.PRORATA_BASE_URL + "/"
    assert url.startswith(base), f"{url} (e-mail to {reader}) does not lead to {base}"
    path = "/" + url[len(base):]
    client = Client()
    if not path.startswith(one_time_prefixes()):
        if reader == settings.PRORATA_SUPPORT_EMAIL:  # the support queue is read by its agents
            user = agent
        else:
            user = User.objects.filter(email__iexact=reader, is_active=True).first()
        assert user is not None, f"{url}: nobody signs in as {reader}"
        console_login(client, user)
    response = client.get(path, follow=True)
    assert response.status_code == 200, (
        f"{url} (e-mail to {reader}) answered {response.status_code} after "
        f"{response.redirect_chain}")


def test_every_link_of_every_email_of_a_journey_opens(clock, demo_catalog):
    clock.set(utc(2026, 1, 1))
    acme, alice = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    alice.set_password(PASSWORD)
    alice.save()
    agent = staff("agent@prorata.example", "support_agent")

    buy(acme, alice, "lite", "monthly", 5, card_token=card())  # a purchase with a new card
    # Umbrella's card requires 3-D Secure: its renewal on 2026-02-15 requires action (e-mailed),
    # and so does each retry until it expires
    umbrella, uma = customer("Umbrella", "US", "uma@umbrella.example", currency="USD")
    buy(umbrella, uma, "lite", "monthly", 1, card_token=card())
    PaymentMethod.objects.filter(account=umbrella).update(is_default=False,
                                                          removed_at=utc(2026, 1, 2))
    payment_method_add(account=umbrella, token=card("4000 0027 6000 3184"), actor=uma)
    clock.set(utc(2026, 1, 15))
    buy(acme, alice, "lite", "monthly", 7)  # a change: two more licenses, a new period from now
    clock.set(utc(2026, 2, 15))
    assert bill_run().renewed == 2  # renewals by the billing run
    # the card now declines: the next renewal fails, is retried, and the subscription expires
    PaymentMethod.objects.filter(account=acme).update(is_default=False,
                                                      removed_at=utc(2026, 2, 16))
    payment_method_add(account=acme, token=card(DECLINED_CARD), actor=alice)
    for day in (15, 16, 18, 22):
        clock.set(utc(2026, 3, day))
        bill_run()
    member_invite(actor=alice, account=acme, email="bob@acme.example")
    request = support_request_create(account=acme, user=alice, kind="billing_question",
                                     message="Where is my invoice?")
    support_request_answer(support_request=request, actor=agent, answer="In your billing center.")
    support_message_post(support_request=request, user=alice, message="Found it, thanks.")
    # Another customer: renewal cancelled then resumed, a change that leaves credit, credit
    # granted by staff, and a refund to the card by staff (its receipt)
    initech, carol = customer("Initech", "US", "carol@initech.example", currency="USD")
    carol.set_password(PASSWORD)
    carol.save()
    purchase = buy(initech, carol, "lite", "monthly", 5, card_token=card()).invoice
    subscription_cancel_renewal(account=initech, user=carol, product_code="webinar")
    subscription_resume_renewal(account=initech, user=carol, product_code="webinar")
    buy(initech, carol, "lite", "monthly", 2)  # the same instant: 3 licenses back as credit
    credit_adjust(account=initech, amount=Money(500, "USD"), reason="Outage on 22 March",
                  actor=agent, idempotency_key="journey-credit")
    refund = refund_request(invoice=purchase, amount=Money(1000, "USD"), reason="Goodwill",
                            actor=agent, idempotency_key="journey-refund")
    assert refund.status == StaffRefundStatus.REFUNDED

    assert outbox_deliver(limit=1000) == OutboxMessage.objects.count()
    assert not OutboxMessage.objects.exclude(status=OutboxStatus.SENT).exists()
    sent = {message.template for message in OutboxMessage.objects.all()}
    assert OUTBOX_TEMPLATES <= sent, f"the journey sent no {OUTBOX_TEMPLATES - sent}"
    kinds = {message.context.get("kind") for message in
             OutboxMessage.objects.filter(template="receipt")}
    assert kinds == {"purchase", "change", "renewal", "refund"}

    # The account e-mails, through the pages that send them.
    outbox_count = len(mail.outbox)
    assert Client().post("/accounts/password_reset/", {"email": alice.email}).status_code == 302
    deliver_mail()  # the worker queues and sends the reset link
    signed_in = Client()
    signed_in.force_login(alice)
    signed_in.post("/profile/email/", {"new_email": "alice.new@acme.example",
                                       "password": PASSWORD})
    Client().post("/accounts/signup/", {"company": "Globex SARL", "country": "FR",
                                        "email": "zoe@globex.example", "password1": PASSWORD,
                                        "password2": PASSWORD})
    subjects = {message.subject for message in mail.outbox[outbox_count:]}
    assert subjects == ACCOUNT_SUBJECTS

    # The French of each outbox e-mail links to the same pages.
    french = []
    for row in OutboxMessage.objects.all():
        row.language = "fr"
        french.append(render_message(row))
    assert any("Voir mon reçu" in message.alternatives[0][0] for message in french)
    # an invitation's footer says who invited the reader (not "a billing contact")
    invitation = render_message(OutboxMessage.objects.get(template="member_invitation"))
    assert "because a member of Acme Corp invited you" in invitation.alternatives[0][0]
    assert "parce qu'un membre de Acme Corp vous a invité" in next(
        message.alternatives[0][0] for message in french if "Acme Corp" in message.subject
        and "invit" in message.subject.lower())

    base = settings.PRORATA_BASE_URL + "/"
    for message in [*mail.outbox, *french]:
        text, html_links = links(message)
        for part, found in (("text", text), ("HTML", html_links)):
            assert found is None or any(url.startswith(base) for url in found), (
                f"the {part} of {message.subject!r} to {message.to} has no link to {base}")
        assert_no_dangling_colon(message)
        for url in dict.fromkeys([*text, *(html_links or [])]):
            open_link(url, message.to[0], agent)
