"""Sign-up and free trial from the public plans page (issue 16, S16)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail

from prorata.accounts.models import Account, AuditEntry, Membership, User
from prorata.subscriptions.models import Subscription, SubscriptionStatus
from tests.app.web.conftest import PASSWORD, link_in, page_text

pytestmark = pytest.mark.django_db

FORM = {"company": "Globex SARL", "country": "FR", "email": "Zoe@Globex.example",
        "password1": PASSWORD, "password2": PASSWORD}


def sign_up(client, plan: str = "", **changes):
    data = {**FORM, **changes, **({"plan": plan} if plan else {})}
    return client.post("/accounts/signup/", data)


def test_each_plan_card_offers_a_way_to_start(client, demo_catalog):
    html = client.get("/").content.decode()
    assert 'href="/accounts/signup/?plan=free_trial"' in html
    assert html.count(">Buy</a>") == 3  # Lite, Standard, Pro; Enterprise says "Contact us"
    assert 'href="/accounts/signup/?plan=lite"' in html
    assert "Up to 1,000 participants" in page_text(client.get("/"))


def test_participant_limits_are_grouped_in_french(client, demo_catalog):
    client.cookies["django_language"] = "fr"
    text = page_text(client.get("/")).replace("\u202f", " ").replace("\xa0", " ")
    assert "Jusqu'à 1 000 participants" in text and "Jusqu'à 100 participants" in text


def test_sign_up_then_confirm_starts_the_free_trial(client, demo_catalog, clock):
    response = sign_up(client, "free_trial")
    assert response.status_code == 200
    assert "We sent a confirmation link to zoe@globex.example" in page_text(response)
    user = User.objects.get(email="zoe@globex.example")
    assert not user.is_active  # cannot sign in before confirming
    account = Account.objects.get(name="Globex SARL")
    assert (account.country, account.currency, account.time_zone) == ("FR", "EUR", "Europe/Paris")
    member = Membership.objects.get(user=user, account=account)
    assert member.is_billing_contact and member.is_admin and member.is_organizer
    assert AuditEntry.objects.filter(action="account.signup", account=account).exists()
    assert not Subscription.objects.filter(account=account).exists()

    (message,) = mail.outbox
    assert message.to == ["zoe@globex.example"]
    link = link_in(message.body)
    assert "plan=free_trial" in link
    page = client.get(link)  # a GET (a mail scanner) changes nothing
    assert page.status_code == 200 and "Confirm and start my free trial" in page_text(page)
    user.refresh_from_db()
    assert not user.is_active

    done = client.post(link)
    assert done.status_code == 302 and done["Location"] == f"/billing/{account.pk}/"
    user.refresh_from_db()
    assert user.is_active
    trial = Subscription.objects.get(account=account)
    assert trial.status == SubscriptionStatus.TRIALING and trial.plan.code == "free_trial"
    assert trial.period_end - trial.period_start == timedelta(days=14)
    home = client.get(done["Location"])
    assert "Your free trial of Free trial has started" in page_text(home)

    # The link works once.
    again = client.post(link)
    assert again.status_code == 404 and "not valid" in page_text(again)


def test_buying_a_paid_plan_goes_to_its_order_summary(client, demo_catalog):
    sign_up(client, "standard", country="US")
    account = Account.objects.get(name="Globex SARL")
    assert account.currency == "USD"
    done = client.post(link_in(mail.outbox[0].body))
    assert done["Location"] == f"/billing/{account.pk}/subscriptions/webinar/modify/?plan=standard"
    summary = client.get(done["Location"])
    assert summary.status_code == 200
    assert 'name="plan" value="standard" checked' in summary.content.decode()
    assert not Subscription.objects.filter(account=account).exists()  # nothing bought yet


def test_a_signed_in_customer_at_the_site_address_reaches_my_account(client, demo_catalog):
    sign_up(client)
    client.post(link_in(mail.outbox[0].body))
    account = Account.objects.get(name="Globex SARL")
    home = client.get("/")
    assert home.status_code == 302 and home["Location"] == "/billing/"
    assert client.get("/billing/")["Location"] == f"/billing/{account.pk}/"
    assert client.get("/plans/").status_code == 200  # the plans stay one click away


def test_the_link_expires_after_a_day(client, demo_catalog, clock):
    sign_up(client)
    link = link_in(mail.outbox[0].body)
    clock.advance(timedelta(days=1, minutes=1))
    response = client.post(link)
    assert response.status_code == 404
    assert not User.objects.get(email="zoe@globex.example").is_active


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"company": "  "}, "company", "Enter your company's name."),
    ({"country": "XX"}, "country", "Choose your country from the list."),
    ({"email": "not-an-address"}, "email", "Enter a valid e-mail address."),
    ({"password2": "something else 42"}, "password2", "The two passwords differ."),
    ({"password1": "12345678", "password2": "12345678"}, "password1", "too common"),
])
def test_bad_input_says_what_to_fix_and_creates_nothing(client, demo_catalog, changes, field,
                                                        message):
    response = sign_up(client, **changes)
    assert response.status_code == 422
    assert message in page_text(response)
    assert not User.objects.exists() and not Account.objects.exists()
    assert mail.outbox == []


def test_an_address_in_use_is_refused(client, demo_catalog, alice):
    response = sign_up(client, email="ALICE@acme.example")
    assert response.status_code == 422
    assert "This address already has an account" in page_text(response)
    assert not Account.objects.exists()


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise OSError("SMTP is down")


def test_an_email_that_cannot_be_sent_leaves_nothing(client, demo_catalog, settings):
    settings.EMAIL_BACKEND = "tests.app.web.test_signup.BrokenBackend"
    response = sign_up(client)
    assert response.status_code == 422
    assert "could not be sent" in page_text(response)
    assert not User.objects.exists() and not Account.objects.exists()


def test_french_sign_up_sends_a_french_email(client, demo_catalog):
    client.cookies["django_language"] = "fr"
    sign_up(client, "free_trial")
    (message,) = mail.outbox
    assert "Confirmez" in message.subject
    assert User.objects.get().language == "fr"
    assert Account.objects.get().language == "fr"


@pytest.mark.parametrize(("plan", "says"), [
    ("free_trial", "You chose the Free trial: free for 14 days, no card needed."),
    ("pro", "You chose Pro. After confirming your e-mail address you will see your order summary"),
])
def test_the_form_says_which_plan_was_chosen(client, demo_catalog, plan, says):
    response = client.get("/accounts/signup/", {"plan": plan})
    assert response.status_code == 200 and says in page_text(response)
    assert f'name="plan" value="{plan}"' in response.content.decode()
