"""The support desk (S11, S13, S14): requests as threads on the customer's Support page and in
the console's queue; statuses, e-mails both ways, and who may see what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from prorata.accounts.models import AuditEntry, User
from prorata.accounts.services import membership_set_roles
from prorata.notifications.models import OutboxMessage
from prorata.support.models import SupportMessage, SupportRequest, SupportRequestStatus
from prorata.support.services import (
    support_message_post,
    support_request_answer,
    support_request_create,
)
from prorata_core.errors import ValidationError
from tests.app.console_auth import console_login
from tests.app.subscriptions.support import buy, card, customer, staff

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    console_login(client, user)
    return client


@pytest.fixture
def bistro(clock, demo_catalog):
    account, bea = customer("Bistro Numérique", "FR", "bea@bistro.example", language="fr")
    bea.language = "fr"  # her pages in French too, not only the account's e-mails
    bea.save(update_fields=["language"])
    invoice = buy(account, bea, "pro", "monthly", 2, card_token=card()).invoice
    return account, bea, invoice


def test_a_refund_request_names_its_invoice_and_reaches_the_support_queue(bistro):
    account, bea, invoice = bistro
    client = signed_in(bea)
    response = client.post(f"/billing/{account.pk}/support/", {
        "kind": "refund_request", "invoice": str(invoice.pk),
        "message": "Nous avons été facturés deux fois."})
    request = SupportRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/billing/{account.pk}/support/{request.pk}/"
    assert (request.kind, request.invoice, request.status, request.message) == (
        "refund_request", invoice, SupportRequestStatus.OPEN, "Nous avons été facturés deux fois.")
    mail = OutboxMessage.objects.get(template="support_to_staff")
    assert mail.to == "support@prorata.example"
    assert mail.context["body"] == "Nous avons été facturés deux fois."
    listing = client.get(f"/billing/{account.pk}/support/").content.decode()
    assert f"#{request.pk}<" in listing and "Ouverte" in listing  # Béa reads French
    thread = client.get(response["Location"]).content.decode()
    assert invoice.number in thread and "Nous avons été facturés deux fois." in thread


def test_a_refund_request_without_an_invoice_of_the_account_is_refused_and_saves_nothing(bistro):
    account, bea, _invoice = bistro
    other, olga = customer("Other", "FR", "olga@other.example")
    theirs = buy(other, olga, "lite", "monthly", 1, card_token=card()).invoice
    for invoice in ("", str(theirs.pk), "not-a-number"):
        response = signed_in(bea).post(f"/billing/{account.pk}/support/", {
            "kind": "refund_request", "invoice": invoice, "message": "Refund please"})
        assert response.status_code == 400
        assert "Choisissez la facture à rembourser." in response.content.decode()
    assert not SupportRequest.objects.exists()
    assert not OutboxMessage.objects.filter(template="support_to_staff").exists()


def test_a_downgrade_request_needs_a_known_plan(bistro):
    account, bea, _invoice = bistro
    with pytest.raises(ValidationError):
        support_request_create(account=account, user=bea, kind="downgrade_request",
                               message="Downgrade", target_plan="platinum")
    request = support_request_create(account=account, user=bea, kind="downgrade_request",
                                     message="Downgrade", target_plan="lite")
    assert request.target_plan == "lite"
    with pytest.raises(ValidationError):
        support_request_create(account=account, user=bea, kind="gossip", message="Hi")
    assert SupportRequest.objects.count() == 1


def test_messages_go_both_ways_with_statuses_and_a_reply_reopens(bistro, clock):
    account, bea, _invoice = bistro
    colleague = User.objects.create_user("chef@bistro.example", "pw", language="en")
    membership_set_roles(actor=None, account=account, user=colleague, billing_contact=True)
    organizer = User.objects.create_user("orga@bistro.example", "pw")
    membership_set_roles(actor=None, account=account, user=organizer, organizer=True)
    agent = staff("support@prorata.example", "support_agent")
    request = support_request_create(account=account, user=bea, kind="billing_question",
                                     message="Pourquoi ce montant ?")
    # staff answer: waiting on the customer; every billing contact is e-mailed in their language
    support_request_answer(support_request=request, actor=agent, answer="Because of VAT.")
    request.refresh_from_db()
    assert (request.status, request.assignee) == (SupportRequestStatus.WAITING, agent)
    replies = {m.to: m.language for m in OutboxMessage.objects.filter(template="support_reply")}
    assert replies == {"bea@bistro.example": "fr", "chef@bistro.example": "en"}
    page = signed_in(bea).get(f"/billing/{account.pk}/support/{request.pk}/").content.decode()
    assert "Because of VAT." in page and "Nous avons répondu et attendons votre retour." in page
    mail = OutboxMessage.objects.get(template="support_reply", to="bea@bistro.example")
    assert mail.context["url"] == f"/billing/{account.pk}/support/{request.pk}/"
    # the customer replies: open again, the assignee is told
    clock.advance(timedelta(hours=2))
    support_message_post(support_request=request, user=bea, message="Merci, et la TVA ?")
    request.refresh_from_db()
    assert request.status == SupportRequestStatus.OPEN
    to_staff = OutboxMessage.objects.filter(template="support_to_staff").order_by("id")
    assert [m.to for m in to_staff] == ["support@prorata.example", "support@prorata.example"]
    # (the assignee is the agent's address, which is also the queue's in the demo: use another)
    agent2 = staff("sam@prorata.example", "support_agent")
    request.assignee = agent2
    request.save()
    support_request_answer(support_request=request, actor=agent2, answer="Done.", close=True)
    request.refresh_from_db()
    assert request.status == SupportRequestStatus.RESOLVED and request.resolved_at == clock.now()
    response = signed_in(bea).post(f"/billing/{account.pk}/support/{request.pk}/",
                                   {"message": "Still wrong."})
    assert response.status_code == 302
    request.refresh_from_db()
    assert (request.status, request.resolved_at) == (SupportRequestStatus.OPEN, None)
    assert OutboxMessage.objects.filter(template="support_to_staff").latest("id").to == \
        "sam@prorata.example"
    assert [m.from_staff for m in request.messages.all()] == [False, True, False, True, False]
    assert AuditEntry.objects.filter(action="support_request.reply").count() == 2


def test_an_empty_reply_is_refused_and_changes_nothing(bistro):
    account, bea, _invoice = bistro
    request = support_request_create(account=account, user=bea, kind="other", message="Hello")
    response = signed_in(bea).post(f"/billing/{account.pk}/support/{request.pk}/",
                                   {"message": "   "})
    assert response.status_code == 400
    assert SupportMessage.objects.count() == 1


def test_a_customer_sees_only_their_accounts_requests(bistro):
    account, bea, _invoice = bistro
    other, olga = customer("Other Co", "FR", "olga@other.example")
    theirs = support_request_create(account=other, user=olga, kind="other",
                                    message="Secret of Other Co")
    client = signed_in(bea)
    assert client.get(f"/billing/{account.pk}/support/{theirs.pk}/").status_code == 404
    assert client.get(f"/billing/{other.pk}/support/{theirs.pk}/").status_code == 404
    assert "Secret of Other Co" not in client.get(f"/billing/{account.pk}/support/").content.decode()
    response = client.post(f"/billing/{account.pk}/support/{theirs.pk}/", {"message": "Hi"})
    assert response.status_code == 404
    assert theirs.messages.count() == 1


def test_a_corporate_accounts_requests_go_to_its_advisor_who_is_named(clock, demo_catalog):
    advisor = staff("advisor@prorata.example", "corporate_advisor")
    advisor.first_name, advisor.last_name = "Ada", "Advisor"
    advisor.save()
    account, gina = customer("Globex", "DE", "gina@globex.example", corporate_advisor=advisor)
    page = signed_in(gina).get(f"/billing/{account.pk}/support/").content.decode()
    assert "Ada Advisor" in page and "Write to your advisor" in page
    support_request_create(account=account, user=gina, kind="billing_question",
                           message="Net 60 possible?")
    assert OutboxMessage.objects.get(template="support_to_staff").to == "advisor@prorata.example"


def test_the_console_queue_filters_assigns_and_resolves(bistro, clock):
    account, bea, _invoice = bistro
    old = support_request_create(account=account, user=bea, kind="other", message="Old one")
    clock.advance(timedelta(days=4))
    new = support_request_create(account=account, user=bea, kind="billing_question",
                                 message="New one")
    agent = staff("sam@prorata.example", "support_agent")
    client = signed_in(agent)
    aged = client.get("/console/support/supportrequest/?age=3").content.decode()
    assert f"#{old.pk}<" in aged and f"#{new.pk}<" not in aged
    kind = client.get("/console/support/supportrequest/?kind__exact=billing_question")
    assert f"#{new.pk}<" in kind.content.decode() and f"#{old.pk}<" not in kind.content.decode()
    response = client.post("/console/support/supportrequest/", {
        "action": "assign_to_me", "_selected_action": [str(old.pk), str(new.pk)]})
    assert response.status_code == 302
    assert set(SupportRequest.objects.values_list("assignee", flat=True)) == {agent.pk}
    mine = client.get(f"/console/support/supportrequest/?assignee__id__exact={agent.pk}")
    assert f"#{old.pk}<" in mine.content.decode()
    client.post(f"/console/support/supportrequest/{old.pk}/change/", {"action": "resolve"})
    old.refresh_from_db()
    assert old.status == SupportRequestStatus.RESOLVED
    assert AuditEntry.objects.filter(action="support_request.assign").count() == 2
    assert AuditEntry.objects.filter(action="support_request.resolve", actor=agent).count() == 1
    # an empty answer is refused with a message and changes nothing
    page = client.post(f"/console/support/supportrequest/{new.pk}/change/",
                       {"action": "reply", "message": ""}).content.decode()
    assert "Write a message of 1 to 5000 characters." in page
    assert new.messages.count() == 1


def test_the_account_overview_shows_money_in_the_accounts_currency_and_pdf_links(bistro):
    account, _bea, invoice = bistro
    agent = staff("sam@prorata.example", "support_agent")
    client = signed_in(agent)
    page = client.get(f"/console/accounts/account/{account.pk}/overview/").content.decode()
    assert "€549.60" in page  # Pro monthly × 2 at 229.00 EUR, + 20 % VAT
    assert ">54960<" not in page
    assert "bea@bistro.example" in page and "billing_contact" in page
    assert invoice.number in page and "Pro" in page
    pdf = client.get(f"/console/billing/document/{invoice.pk}/pdf/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    document_page = client.get(f"/console/billing/document/{invoice.pk}/change/").content.decode()
    assert "€549.60" in document_page and "/pdf/" in document_page


def test_the_account_overview_is_closed_to_other_advisors_and_operators(bistro):
    account, _bea, invoice = bistro
    advisor = staff("advisor@prorata.example", "corporate_advisor")
    assert signed_in(advisor).get(
        f"/console/accounts/account/{account.pk}/overview/").status_code == 404
    assert signed_in(advisor).get(
        f"/console/billing/document/{invoice.pk}/pdf/").status_code == 404
    operator = staff("ops@prorata.example", "operator")
    assert signed_in(operator).get(
        f"/console/accounts/account/{account.pk}/overview/").status_code == 403


def test_support_e_mails_render_in_the_readers_language(bistro, mailoutbox):
    from prorata.notifications.outbox import outbox_deliver

    account, bea, _invoice = bistro
    agent = staff("sam@prorata.example", "support_agent")
    request = support_request_create(account=account, user=bea, kind="billing_question",
                                     message="Pourquoi ?")
    support_request_answer(support_request=request, actor=agent, answer="Because.", close=True)
    mailoutbox.clear()
    assert outbox_deliver() >= 2
    by_to = {m.to[0]: m for m in mailoutbox}
    to_bea = by_to["bea@bistro.example"]
    assert to_bea.subject == f"Notre réponse à votre demande n° {request.pk}"
    assert "Because." in to_bea.body and "rouverte" in to_bea.body
    assert f"/billing/{account.pk}/support/{request.pk}/" in to_bea.body
    to_staff = by_to["support@prorata.example"]
    assert to_staff.subject == (f"[Bistro Numérique] New support request #{request.pk} "
                                "(billing_question)")
    assert "Pourquoi ?" in to_staff.body
    assert f"/console/support/supportrequest/{request.pk}/change/" in to_staff.body
