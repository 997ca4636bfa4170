"""The public plans page at /."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from prorata.catalog.models import Plan


def plan_cards(html: str) -> dict[str, str]:
    """Each plan card's text by plan name, so that a price is checked in the right card."""
    by_name = {}
    for segment in html.split('<li class="plan">')[1:]:
        card = segment.split("</section>")[0]
        name = re.search(r"<h3>(.*?)</h3>", card).group(1)
        by_name[name] = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", card)).strip()
    return by_name


@pytest.fixture
def page(client, clock, demo_catalog) -> str:
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_home_page_lists_every_plan_in_rank_order(page):
    assert list(plan_cards(page)) == ["Free trial", "Lite", "Standard", "Pro", "Enterprise"]


def test_each_plan_shows_its_participants_features_and_prices(page):
    cards = plan_cards(page)
    assert cards["Lite"] == (
        "Lite Up to 250 participants "
        "per license per month €55.00 · $59.00 "
        "per license per year €552.00 · $588.00 Buy"
    )
    assert cards["Standard"] == (
        "Standard Up to 500 participants Recording Custom branding "
        "per license per month €119.00 · $129.00 "
        "per license per year €1,104.00 · $1,188.00 Buy"
    )
    assert cards["Pro"] == (
        "Pro Up to 1,000 participants Recording Custom branding Webcasts API access "
        "per license per month €229.00 · $249.00 "
        "per license per year €2,196.00 · $2,388.00 Buy"
    )
    assert cards["Free trial"] == (
        "Free trial Up to 100 participants Free for 14 days, then it expires. One license. "
        "per license per month €0.00 · $0.00 per license per year — Start free trial"
    )


def test_enterprise_says_contact_us_and_shows_no_price(page):
    assert plan_cards(page)["Enterprise"] == (
        "Enterprise Up to 3,000 participants "
        "Recording Custom branding Webcasts API access Dedicated advisor "
        "Contact us Priced by a dedicated advisor for corporate accounts."
    )
    assert page.count("Contact us") == 1


def test_prices_and_words_follow_the_browser_language(client, clock, demo_catalog):
    # given a French browser
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    # then the page is in French, amounts formatted the French way (plan_cards folds spaces)
    assert "<h1>Formules et tarifs</h1>" in page
    assert plan_cards(page)["Lite"] == (
        "Lite Jusqu'à 250 participants "
        "par licence et par mois 55,00 € · 59,00 $US "
        "par licence et par an 552,00 € · 588,00 $US Acheter"
    )
    # with CLDR's spacing: a narrow no-break space between thousands, a no-break one before €
    assert "1\u202f104,00\xa0€" in page


def test_the_footer_shows_the_project_clock(page):
    assert "Project clock: 2026-03-11T00:00:00Z (movable demo clock)" in page


def test_a_clock_move_shows_on_the_next_page(client, clock, demo_catalog):
    clock.advance(timedelta(days=1, hours=2))
    assert "Project clock: 2026-03-12T02:00:00Z" in client.get("/").content.decode()


def test_a_retired_plan_is_not_offered(client, clock, demo_catalog):
    Plan.objects.filter(code="standard").update(active=False)
    cards = plan_cards(client.get("/").content.decode())
    assert list(cards) == ["Free trial", "Lite", "Pro", "Enterprise"]


def test_the_page_costs_the_snapshot_and_one_clock_read(client, clock, demo_catalog,
                                                        django_assert_max_num_queries):
    with django_assert_max_num_queries(5):
        assert client.get("/").status_code == 200


def test_an_empty_catalog_says_so(client, clock):
    response = client.get("/")
    assert response.status_code == 200
    assert "No plans are offered yet." in response.content.decode()


def test_the_page_loads_nothing_from_elsewhere(page):
    assert not re.search(r'(src|href)="(https?:)?//', page)
