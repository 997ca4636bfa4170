"""The top bar: links for who is looking, the current page marked."""

from __future__ import annotations

import re

from prorata.accounts.models import User
from tests.app.web.conftest import PASSWORD


def nav(response) -> list[str]:
    """The top bar's link labels, the current page's marked."""
    html = response if isinstance(response, str) else response.content.decode()
    block = html.split('<nav class="nav"', 1)[1].split("</nav>", 1)[0]
    return [
        f"{label}{' (current)' if current else ''}"
        for current, label in re.findall(r'<a href="[^"]+"( aria-current="page")?>([^<]+)</a>', block)
    ]


def test_a_visitor_sees_the_plans_and_a_sign_in_button(client, clock):
    response = client.get("/")
    assert nav(response) == ["Plans (current)"]
    assert '<a class="button button-quiet" href="/accounts/login/">Sign in</a>' in response.content.decode()


def test_a_customer_sees_their_profile(signed_in):
    assert nav(signed_in.get("/profile/")) == ["Plans", "Billing", "Profile (current)"]


def test_staff_also_see_the_console(client, clock):
    User.objects.create_user("ops@prorata.example", PASSWORD, is_staff=True)
    client.login(username="ops@prorata.example", password=PASSWORD)
    assert nav(client.get("/")) == ["Plans (current)", "Billing", "Profile", "Staff console"]


def test_the_top_bar_is_in_french_for_a_french_reader(signed_in):
    html = signed_in.get("/profile/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert nav(html) == ["Formules", "Facturation", "Profil (current)"]
    assert ">Se déconnecter</button>" in html

