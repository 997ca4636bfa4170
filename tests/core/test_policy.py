import pytest

from prorata_core.errors import (
    AdvisorPriced,
    AlreadySubscribed,
    ChangeRefused,
    CorporateAccount,
    CurrencyLocked,
    DowngradeNeedsSupport,
    NothingToChange,
    NotInCatalog,
    PastDue,
    SubscriptionExpired,
    TrialOnlyPurchase,
)
from prorata_core.money import Money
from prorata_core.orders import Configuration, OrderKind
from prorata_core.policy import BillingMode, Change, Status, check_order, classify
from tests.demo_catalog import CATALOG, config

SELF = BillingMode.SELF_SERVICE
STANDARD_2 = config("standard", "annual", 2)


def change(target, *, status=Status.ACTIVE, current=STANDARD_2, mode=SELF, by_staff=False):
    return check_order(kind=OrderKind.CHANGE, billing_mode=mode, status=status, current=current,
                       target=target, by_staff=by_staff)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (config("pro", "annual", 2), {Change.UPGRADE}),
        (config("standard", "annual", 5), {Change.MORE_LICENSES}),
        (config("standard", "annual", 1), {Change.FEWER_LICENSES}),
        (config("standard", "monthly", 2), {Change.CYCLE_CHANGE}),
        (config("pro", "monthly", 7), {Change.UPGRADE, Change.MORE_LICENSES, Change.CYCLE_CHANGE}),
    ],
)
def test_a_billing_contact_may_upgrade_and_change_licenses_and_period_online(target, expected):
    assert change(target) == expected
    assert classify(STANDARD_2, target) == expected


@pytest.mark.parametrize("target", [config("lite", "annual", 2), config("lite", "monthly", 9)])
def test_a_plan_downgrade_needs_support(target):
    with pytest.raises(DowngradeNeedsSupport) as refused:
        change(target)
    assert refused.value.params == {"plan": "standard", "target_plan": "lite"}
    assert Change.DOWNGRADE in change(target, by_staff=True)


def test_nothing_to_change():
    with pytest.raises(NothingToChange) as refused:
        change(STANDARD_2)
    assert refused.value.http_status == 422


def test_a_corporate_account_is_sent_to_its_contact_and_staff_may_act():
    with pytest.raises(CorporateAccount) as refused:
        check_order(kind=OrderKind.CHANGE, billing_mode=BillingMode.CORPORATE, status=Status.ACTIVE,
                    current=STANDARD_2, target=config("pro", "annual", 2),
                    contact="Ada Advisor <advisor@prorata.example>")
    assert "Ada Advisor <advisor@prorata.example>" in refused.value.message
    assert refused.value.params["contact"] == "Ada Advisor <advisor@prorata.example>"
    assert change(config("pro", "annual", 2), mode=BillingMode.CORPORATE, by_staff=True)


def test_advisor_priced_plans_are_not_sold_online():
    with pytest.raises(AdvisorPriced):
        change(config("enterprise", "annual", 2))
    assert change(config("enterprise", "annual", 2), by_staff=True) == {Change.UPGRADE}


def test_past_due_pays_first_unless_staff():
    with pytest.raises(PastDue) as refused:
        change(config("pro", "annual", 2), status=Status.PAST_DUE)
    assert "pay it" in refused.value.message
    assert change(config("pro", "annual", 2), status=Status.PAST_DUE, by_staff=True)


def test_a_trial_is_only_followed_by_a_purchase():
    trial = Configuration(CATALOG.plan("free_trial"), CATALOG.cycle("monthly"), 1, Money(0, "USD"))
    with pytest.raises(TrialOnlyPurchase):
        change(config("pro", "annual", 2), status=Status.TRIALING, current=trial)
    assert check_order(kind=OrderKind.PURCHASE, billing_mode=SELF, status=Status.TRIALING,
                       current=trial, target=config("pro", "annual", 2)) == frozenset()
    with pytest.raises(NotInCatalog):
        check_order(kind=OrderKind.PURCHASE, billing_mode=SELF, status=None, current=None,
                    target=trial)


def test_an_expired_subscription_is_reactivated_not_changed_or_bought_again():
    with pytest.raises(SubscriptionExpired) as refused:
        change(config("pro", "annual", 2), status=Status.EXPIRED)
    assert "Subscribe now" in refused.value.message
    with pytest.raises(SubscriptionExpired):
        check_order(kind=OrderKind.PURCHASE, billing_mode=SELF, status=Status.EXPIRED,
                    current=STANDARD_2, target=STANDARD_2)
    assert check_order(kind=OrderKind.REACTIVATION, billing_mode=SELF, status=Status.EXPIRED,
                       current=STANDARD_2, target=STANDARD_2) == frozenset()


@pytest.mark.parametrize("status", [Status.ACTIVE, Status.PAST_DUE])
def test_an_active_subscription_is_modified_not_bought_or_reactivated(status):
    for kind in (OrderKind.PURCHASE, OrderKind.REACTIVATION):
        with pytest.raises(AlreadySubscribed):
            check_order(kind=kind, billing_mode=SELF, status=status, current=STANDARD_2,
                        target=STANDARD_2)


def test_a_first_purchase_from_nothing_is_allowed():
    assert check_order(kind=OrderKind.PURCHASE, billing_mode=SELF, status=None, current=None,
                       target=STANDARD_2) == frozenset()


def test_a_change_needs_a_subscription():
    with pytest.raises(ChangeRefused) as refused:
        check_order(kind=OrderKind.CHANGE, billing_mode=SELF, status=None, current=None,
                    target=STANDARD_2)
    assert refused.value.code == "change_refused"


def test_the_currency_is_locked():
    with pytest.raises(CurrencyLocked):
        change(config("pro", "annual", 2, "EUR"))


def test_renewals_are_not_a_customer_action():
    assert check_order(kind=OrderKind.RENEWAL, billing_mode=SELF, status=Status.ACTIVE,
                       current=STANDARD_2, target=STANDARD_2) == frozenset()
