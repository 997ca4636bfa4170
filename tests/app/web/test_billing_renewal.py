"""Cancel renewal / Resume renewal from the Options menu (S2), with their e-mails; refused online
for a corporate account (S3)."""

from __future__ import annotations

import pytest
from django.core import mail

from prorata.accounts.models import AuditEntry
from prorata.notifications.outbox import outbox_deliver
from prorata.subscriptions.models import Subscription, SubscriptionEvent
from prorata.subscriptions.services import subscription_cancel_renewal
from prorata_core.errors import CorporateAccount
from prorata_core.periods import utc
from tests.app.web.billing_support import acme_world, globex_world
from tests.app.web.conftest import page_text

pytestmark = pytest.mark.usefixtures("demo_catalog")


def test_cancel_then_resume_renewal_with_their_emails(clock):
    # given Acme's active annual subscription, on 2026-03-11
    acme = acme_world(clock)
    clock.set(utc(2026, 3, 11))
    client = acme.client()
    mail.outbox.clear()
    outbox_deliver()
    mail.outbox.clear()
    # when Alice cancels the renewal
    response = client.post(acme.url + "subscriptions/webinar/cancel-renewal/")
    # then the subscription stays active to the period end and will not renew
    assert response["Location"] == acme.url
    subscription = Subscription.objects.get(account=acme.account)
    assert (subscription.status, subscription.auto_renew) == ("active", False)
    text = page_text(client.get(acme.url))
    assert ("Renewal cancelled: your subscription stays active until January 1, 2027, then it "
            "expires.") in text
    assert "Resume renewal" in text and "Ends on January 1, 2027" in text
    # and an e-mail confirms it
    outbox_deliver()
    (cancelled,) = mail.outbox
    assert cancelled.subject == "The renewal of your Webinar subscription is cancelled"
    assert ("Your Webinar subscription will not renew. It stays active until January 1, 2027, "
            "then it expires.") in cancelled.body
    # when she resumes it
    mail.outbox.clear()
    client.post(acme.url + "subscriptions/webinar/resume-renewal/")
    # then it renews again, with its e-mail, history and audit entries
    assert Subscription.objects.get(account=acme.account).auto_renew is True
    outbox_deliver()
    (resumed,) = mail.outbox
    assert resumed.subject == "Your Webinar subscription renews again"
    assert "it renews automatically on January 1, 2027" in resumed.body
    assert list(SubscriptionEvent.objects.filter(subscription=subscription).order_by("id")
                .values_list("kind", flat=True))[-2:] == ["renewal_stopped", "renewal_resumed"]
    assert AuditEntry.objects.filter(action__in=["subscription.cancel_renewal",
                                                 "subscription.resume_renewal"]).count() == 2


def test_cancelling_twice_changes_nothing_more(clock):
    acme = acme_world(clock)
    for _ in range(2):
        subscription_cancel_renewal(account=acme.account, user=acme.user, product_code="webinar")
    assert AuditEntry.objects.filter(action="subscription.cancel_renewal").count() == 1


def test_a_corporate_account_cannot_cancel_online_and_is_told_whom_to_contact(clock):
    globex = globex_world(clock)
    with pytest.raises(CorporateAccount) as refused:
        subscription_cancel_renewal(account=globex.account, user=globex.user,
                                    product_code="webinar")
    assert "contact your advisor, Ada Advisor (advisor@prorata.example)" in str(refused.value)
    client = globex.client()
    client.post(globex.url + "subscriptions/webinar/cancel-renewal/")
    assert "contact your advisor, Ada Advisor" in page_text(client.get(globex.url))
    assert Subscription.objects.get(account=globex.account).auto_renew is True


def test_cancel_renewal_asks_first_and_keeps_the_reason_for_staff(clock):
    acme = acme_world(clock)
    clock.set(utc(2026, 3, 11))
    client = acme.client()
    # the Options menu leads to a confirmation page; opening it changes nothing
    assert f'href="/billing/{acme.account.pk}/subscriptions/webinar/cancel-renewal/"' in \
        client.get(acme.url).content.decode()
    page = client.get(acme.url + "subscriptions/webinar/cancel-renewal/")
    assert page.status_code == 200
    text = page_text(page)
    assert "stays active until January 1, 2027 at 12:00 AM (UTC)" in text
    assert "Why are you leaving? (optional)" in text and "Keep my subscription" in text
    assert Subscription.objects.get(account=acme.account).auto_renew
    # confirming with a reason cancels and records the reason in the history and the audit log
    client.post(acme.url + "subscriptions/webinar/cancel-renewal/",
                {"reason": "  We run fewer   webinars now. "})
    assert not Subscription.objects.get(account=acme.account).auto_renew
    event = SubscriptionEvent.objects.get(kind=SubscriptionEvent.Kind.RENEWAL_CANCELLED)
    assert event.after["reason"] == "We run fewer webinars now."
    audit = AuditEntry.objects.get(action="subscription.cancel_renewal")
    assert audit.after["reason"] == "We run fewer webinars now."


def test_a_too_long_reason_is_refused_and_changes_nothing(clock):
    acme = acme_world(clock)
    response = acme.client().post(acme.url + "subscriptions/webinar/cancel-renewal/",
                                  {"reason": "x" * 1001})
    assert response.status_code == 422
    assert "Please keep the reason under 1000 characters." in page_text(response)
    assert Subscription.objects.get(account=acme.account).auto_renew
    assert not AuditEntry.objects.filter(action="subscription.cancel_renewal").exists()
