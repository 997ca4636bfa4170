"""Every billing e-mail goes to the account's billing contacts and to the billing e-mail of its
billing details (issue 16): the receipts of a purchase, a change and a renewal (services and billing
run), a cancelled renewal, a failed renewal charge and the expiry at the end of dunning. The billing
mailbox reads the account's language and is greeted without a name; an address a contact already
has gets each e-mail once."""

from __future__ import annotations

import pytest

from prorata.accounts.billing_details import account_billing_details_update
from prorata.jobs.billing_run import bill_run
from prorata.notifications.models import OutboxMessage
from prorata.notifications.outbox import render_message
from prorata.payments.models import PaymentMethod
from prorata.payments.services import payment_method_add
from prorata.subscriptions.services import subscription_cancel_renewal
from prorata_core.periods import utc
from tests.app.subscriptions.support import DECLINED_CARD, buy, card, customer

pytestmark = pytest.mark.django_db


def _details(account, user, email: str) -> None:
    account_billing_details_update(
        account=account, actor=user, name="Nord Conseil SARL", billing_address="1 rue du Port\n"
        "59000 Lille", country="FR", vat_number="", billing_email=email, time_zone="Europe/Paris")


def _sent(template: str) -> list[tuple[str, str, str]]:
    return sorted((message.to, message.language, message.dedupe_key.rsplit(":", 1)[1])
                  for message in OutboxMessage.objects.filter(template=template))


def test_receipts_and_renewal_e_mails_go_to_the_billing_e_mail_too(clock, demo_catalog):
    # Given a French account whose billing contact reads English, with a billing e-mail
    clock.set(utc(2026, 1, 1))
    account, user = customer("Nord Conseil", "FR", "ana@nord.example", currency="EUR",
                             language="fr")
    user.language = "en"
    user.save(update_fields=["language"])
    _details(account, user, " Compta@Nord.example ")
    contact = str(user.pk)
    # when it buys, changes, and cancels the renewal
    buy(account, user, "lite", "monthly", 2, card_token=card())
    clock.set(utc(2026, 1, 11))
    buy(account, user, "lite", "monthly", 3)
    subscription_cancel_renewal(account=account, user=user, product_code="webinar")
    # then each e-mail went to the contact and to the billing e-mail, in the account's language
    both = [("ana@nord.example", "en", contact), ("compta@nord.example", "fr", "billing")]
    assert _sent("receipt") == sorted(both + both)  # the purchase's and the change's
    assert _sent("renewal_cancelled") == both
    # greeted without a name, in French
    mailbox = OutboxMessage.objects.filter(template="renewal_cancelled", to="compta@nord.example")
    email = render_message(mailbox.get())
    assert email.body.startswith("Bonjour,") and "Ana" not in email.body
    assert email.to == ["compta@nord.example"]


def test_the_billing_run_s_receipts_failed_charges_and_expiry_go_to_the_billing_e_mail(
    clock, demo_catalog
):
    # Given two accounts with a billing e-mail: one whose credit pays its renewal, one whose
    # card declines
    clock.set(utc(2026, 1, 1))
    paid, ana = customer("Nord Conseil", "FR", "ana@nord.example", currency="EUR")
    _details(paid, ana, "compta@nord.example")
    buy(paid, ana, "lite", "monthly", 5, card_token=card())
    buy(paid, ana, "lite", "monthly", 1)  # the same instant: 4 licenses back as credit
    unpaid, bob = customer("Sud Conseil", "FR", "bob@sud.example", currency="EUR")
    _details(unpaid, bob, "compta@sud.example")
    buy(unpaid, bob, "lite", "monthly", 1, card_token=card())
    PaymentMethod.objects.filter(account=unpaid).update(removed_at=utc(2026, 1, 2),
                                                        is_default=False)
    payment_method_add(account=unpaid, token=card(DECLINED_CARD), actor=bob)
    OutboxMessage.objects.all().delete()
    # when the billing run renews both, then retries the declined charge until dunning ends
    for day in (1, 2, 4, 8):
        clock.set(utc(2026, 2, day))
        bill_run()
    # then the receipt, each failed charge and the expiry went to the billing e-mails too
    assert _sent("receipt") == [("ana@nord.example", "en", str(ana.pk)),
                                ("compta@nord.example", "en", "billing")]
    sud = [("bob@sud.example", "en", str(bob.pk)), ("compta@sud.example", "en", "billing")]
    assert _sent("payment_failed") == sorted(sud * 3)
    assert _sent("subscription_expired") == sud


def test_a_billing_e_mail_that_is_a_contact_s_address_gets_each_e_mail_once(clock, demo_catalog):
    clock.set(utc(2026, 1, 1))
    account, user = customer("Nord Conseil", "FR", "ana@nord.example", currency="EUR")
    _details(account, user, "ANA@nord.example")
    buy(account, user, "lite", "monthly", 1, card_token=card())
    assert _sent("receipt") == [("ana@nord.example", "en", str(user.pk))]


def test_without_a_billing_e_mail_only_the_contacts_get_them(clock, demo_catalog):
    clock.set(utc(2026, 1, 1))
    account, user = customer("Nord Conseil", "FR", "ana@nord.example", currency="EUR")
    buy(account, user, "lite", "monthly", 1, card_token=card())
    assert _sent("receipt") == [("ana@nord.example", "en", str(user.pk))]


def test_members_who_are_not_active_billing_contacts_get_none(clock, demo_catalog):
    from prorata.accounts.models import User
    from prorata.accounts.services import membership_set_roles

    clock.set(utc(2026, 1, 1))
    account, user = customer("Nord Conseil", "FR", "ana@nord.example", currency="EUR")
    _details(account, user, "compta@nord.example")
    admin = User.objects.create_user("admin@nord.example", "pw")
    membership_set_roles(actor=None, account=account, user=admin, admin=True)
    gone = User.objects.create_user("gone@nord.example", "pw", is_active=False)
    membership_set_roles(actor=None, account=account, user=gone, billing_contact=True)
    buy(account, user, "lite", "monthly", 1, card_token=card())
    assert _sent("receipt") == [("ana@nord.example", "en", str(user.pk)),
                                ("compta@nord.example", "en", "billing")]
