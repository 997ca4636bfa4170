"""A change keeps the customer's renewal choice (S2, issue 12 item 8): after Cancel renewal, a
license or plan change leaves renewal off, and the order summary says so, in English and French."""

from __future__ import annotations

import pytest

from prorata.subscriptions.models import Order, Subscription
from prorata.subscriptions.services import subscription_cancel_renewal
from prorata_core.periods import utc
from tests.app.subscriptions.support import buy
from tests.app.web.billing_support import acme_world, bistro_world
from tests.app.web.conftest import page_text

pytestmark = pytest.mark.usefixtures("demo_catalog")

NOTE = "Your renewal stays cancelled: this change does not turn it back on"


def test_a_change_after_cancel_renewal_keeps_renewal_off_and_the_summary_says_so(clock):
    acme = acme_world(clock)
    clock.set(utc(2026, 4, 1))
    subscription_cancel_renewal(account=acme.account, user=acme.user, product_code="webinar")
    client = acme.client()
    modify = acme.url + "subscriptions/webinar/modify/"
    summary = page_text(client.get(modify, {"plan": "pro", "cycle": "annual", "quantity": "2"},
                                   HTTP_HX_REQUEST="true"))
    assert NOTE in summary and "ends on April 1, 2027" in summary
    client.post(modify, {"plan": "pro", "cycle": "annual", "quantity": "2"})
    assert NOTE in page_text(client.get(acme.url + "checkout/"))

    result = buy(acme.account, acme.user, "pro", "annual", 2)
    subscription = Subscription.objects.get(account=acme.account)
    assert (subscription.plan.code, subscription.auto_renew) == ("pro", False)
    assert Order.objects.get(pk=result.order.pk).summary.items[0].auto_renew is False
    page = page_text(client.get(acme.url + f"orders/{result.order.pk}/"))
    assert NOTE in page


def test_a_change_with_renewal_on_says_nothing_of_it_and_keeps_it_on(clock):
    acme = acme_world(clock)
    clock.set(utc(2026, 4, 1))
    summary = page_text(acme.client().get(
        acme.url + "subscriptions/webinar/modify/",
        {"plan": "pro", "cycle": "annual", "quantity": "2"}, HTTP_HX_REQUEST="true"))
    assert NOTE not in summary
    buy(acme.account, acme.user, "pro", "annual", 2)
    assert Subscription.objects.get(account=acme.account).auto_renew is True


def test_the_note_is_french_for_a_french_reader(clock):
    bistro = bistro_world(clock)
    clock.set(utc(2026, 3, 11))
    subscription_cancel_renewal(account=bistro.account, user=bistro.user, product_code="webinar")
    client = bistro.client()
    client.cookies["django_language"] = "fr"
    summary = page_text(client.get(
        bistro.url + "subscriptions/webinar/modify/",
        {"plan": "lite", "cycle": "monthly", "quantity": "3"}, HTTP_HX_REQUEST="true",
        HTTP_ACCEPT_LANGUAGE="fr"))
    assert "Votre renouvellement reste annulé" in summary
    assert "11 avril 2026" in summary
