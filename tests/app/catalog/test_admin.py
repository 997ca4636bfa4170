"""The catalog in the staff console: listed with decimal amounts, prices entered as decimals."""

from __future__ import annotations

import pytest

from prorata.catalog.models import BillingCycle, Plan, Price


@pytest.mark.parametrize(
    "url",
    [
        "/console/",
        "/console/catalog/product/",
        "/console/catalog/plan/",
        "/console/catalog/billingcycle/",
        "/console/catalog/price/",
        "/console/common/clockstate/",
    ],
)
def test_every_list_opens_for_staff(admin_client, clock, demo_catalog, url):
    assert admin_client.get(url).status_code == 200


def test_the_console_is_closed_to_visitors(client, demo_catalog):
    response = client.get("/console/catalog/price/")
    assert response.status_code == 302
    assert response["Location"].startswith("/console/login/")


def test_prices_are_listed_as_decimals(admin_client, demo_catalog):
    page = admin_client.get("/console/catalog/price/").content.decode()
    for amount in ["59.00", "55.00", "1188.00", "2388.00", "2196.00", "0.00"]:
        assert f">{amount}<" in page
    assert ">118800<" not in page


def test_the_plan_page_lists_its_prices_as_decimals(admin_client, demo_catalog):
    pro = Plan.objects.get(code="pro")
    page = admin_client.get(f"/console/catalog/plan/{pro.pk}/change/").content.decode()
    assert 'value="2388.00"' in page
    assert 'value="249.00"' in page


def post_price(admin_client, amount: str):
    return admin_client.post(
        "/console/catalog/price/add/",
        {
            "plan": Plan.objects.get(code="standard").pk,
            "cycle": BillingCycle.objects.get(code="quarterly").pk,
            "currency": "USD",
            "amount": amount,
        },
    )


def test_a_price_entered_as_a_decimal_is_stored_in_exact_cents(admin_client, demo_catalog):
    response = post_price(admin_client, "349.99")
    assert response.status_code == 302
    assert Price.objects.get(plan__code="standard", cycle__code="quarterly").unit_amount == 34_999


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        ("349.999", "has more decimals than USD allows"),
        ("-1.00", "A price cannot be negative."),
        ("1,000.00", "is not an amount"),
        ("3e2", "is not an amount"),
    ],
)
def test_a_bad_amount_is_refused_and_nothing_is_stored(admin_client, demo_catalog, amount, error):
    response = post_price(admin_client, amount)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Price.objects.filter(cycle__code="quarterly").exists()


def test_an_unknown_currency_is_refused(admin_client, demo_catalog):
    response = admin_client.post(
        "/console/catalog/price/add/",
        {
            "plan": Plan.objects.get(code="standard").pk,
            "cycle": BillingCycle.objects.get(code="quarterly").pk,
            "currency": "ZZZ",
            "amount": "1.00",
        },
    )
    assert response.status_code == 200
    assert "is not an ISO 4217 currency code" in response.content.decode()
    assert not Price.objects.filter(cycle__code="quarterly").exists()


def test_the_clock_cannot_be_edited_in_the_console(admin_client, clock):
    assert admin_client.get("/console/common/clockstate/add/").status_code == 403
    assert admin_client.post("/console/common/clockstate/1/change/", {}).status_code == 403
