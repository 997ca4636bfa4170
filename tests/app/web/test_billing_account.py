"""My account (S10, S15, S16; S3, S14 for corporate accounts) and the way in (/billing/)."""

from __future__ import annotations

import pytest

from prorata.accounts.services import membership_set_roles
from prorata.subscriptions.models import Subscription, SubscriptionStatus
from prorata.subscriptions.services import subscription_start_trial
from prorata_core.periods import utc
from tests.app.subscriptions.support import customer
from tests.app.web.billing_support import World, acme_world, globex_world, member
from tests.app.web.conftest import page_text

pytestmark = pytest.mark.usefixtures("demo_catalog")


def test_billing_sends_a_member_of_one_account_to_it_and_sign_in_lands_there(clock):
    # given Acme's billing contact
    acme = acme_world(clock)
    # when they open /billing/
    response = acme.client().get("/billing/")
    # then they land on their account; and signing in lands on /billing/
    assert response.status_code == 302 and response["Location"] == acme.url
    from django.conf import settings
    assert settings.LOGIN_REDIRECT_URL == "/billing/"


def test_a_user_of_two_accounts_chooses(clock):
    acme = acme_world(clock)
    other, _ = customer("Other Ltd", "US", "o@other.example", currency="USD")
    membership_set_roles(actor=None, account=other, user=acme.user, billing_contact=True)
    text = page_text(acme.client().get("/billing/"))
    assert "Acme Corp" in text and "Other Ltd" in text


def test_the_product_card_shows_the_subscription_and_its_next_billing(clock):
    # given Acme's Standard annual × 2 from 2026-01-01, on 2026-03-11
    acme = acme_world(clock)
    clock.set(utc(2026, 3, 11))
    # when Alice opens My account
    text = page_text(acme.client().get(acme.url))
    # then the card shows plan, licenses, limit, period, next billing date and amount
    assert "Webinar Standard Active Options" in text
    assert "Modify subscription Cancel renewal" in text
    assert "Licenses 2" in text and "Participants per webinar up to 500" in text
    assert "Billing period Annual" in text
    assert "Next billing date January 1, 2027" in text
    assert "Next billing amount $2,376.00" in text
    # and the page ends with the latest billing activity and View all transactions
    assert "Latest billing activity" in text
    # one row per document, with its status and its ledger rows on demand
    assert "January 1, 2026 Invoice 2026-000001 Paid $2,376.00 PDF" in text
    assert "Ledger detail (2026-000001)" in text
    assert text.index("Latest billing activity") < text.index("View all transactions")


def test_a_member_without_the_billing_role_sees_the_plan_but_no_billing(clock):
    acme = acme_world(clock)
    organizer = member(acme, "carol@acme.example", organizer=True)
    text = page_text(acme.client(organizer).get(acme.url))
    assert "Webinar Standard" in text and "Licenses 2" in text
    assert "$2,376.00" not in text and "Latest billing activity" not in text
    assert "Options" not in text
    # and the billing pages of the account are refused to them (403, not the data)
    for path in ("transactions/", "cart/", "checkout/", "payment-methods/",
                 "subscriptions/webinar/modify/"):
        assert acme.client(organizer).get(acme.url + path).status_code == 403, path


def test_a_stranger_gets_404(clock):
    acme = acme_world(clock)
    _, stranger = customer("Stranger", "US", "s@stranger.example", currency="USD")
    assert acme.client(stranger).get(acme.url).status_code == 404


def test_an_expired_free_trial_offers_subscribe_now_instead_of_options(clock):
    # given a free trial that has ended and expired (S16)
    account, user = customer("Trial Co", "US", "t@trial.example", currency="USD")
    subscription_start_trial(account=account, product_code="webinar", actor=user)
    Subscription.objects.filter(account=account).update(status=SubscriptionStatus.EXPIRED)
    world = World(account, user)
    # when the billing contact opens My account
    text = page_text(world.client().get(world.url))
    # then Subscribe now replaces Options, and it leads to the plan form
    assert "Subscribe now" in text and "Options" not in text
    response = world.client().get(world.url + "subscriptions/webinar/modify/")
    assert "Subscribe now" in page_text(response)


def test_no_subscription_offers_subscribe_now(clock):
    account, user = customer("New Co", "US", "n@new.example", currency="USD")
    text = page_text(World(account, user).client().get(f"/billing/{account.pk}/"))
    assert "Not subscribed. " in text + " " and "Subscribe now" in text


def test_a_corporate_account_shows_its_advisor_instead_of_the_change_actions(clock):
    # given Globex, corporate, advised by Ada Advisor (S3, S14)
    globex = globex_world(clock)
    clock.set(utc(2026, 3, 11))
    # when Hans opens My account
    text = page_text(globex.client().get(globex.url))
    # then it names the advisor and offers no Options
    assert ("This account is billed through the Corporate Billing Center. To change, cancel or "
            "renew a subscription, contact Ada Advisor (advisor@prorata.example).") in text
    assert "Options" not in text and "Subscribe now" not in text
    # and the modify page shows the contact and no form
    modify = page_text(globex.client().get(globex.url + "subscriptions/webinar/modify/"))
    assert "contact Ada Advisor (advisor@prorata.example)" in modify
    assert "Checkout" not in modify and "Order summary" not in modify
