"""Deployment hardening (issue 18): a Content-Security-Policy on every answer that allows no inline
script, templates that need none, and API documentation that a setting makes private.

`prorata check --deploy` with the production settings of `.env.example` (HSTS, HTTPS redirect,
secure cookies behind a TLS proxy, PRORATA_HTTPS) is tested by
tests/app/test_settings_documented.py::test_check_deploy_is_clean_with_the_production_settings;
the browser's view of the policy by tests/browser/test_content_security_policy.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client, override_settings

from prorata.catalog.services import catalog_load_demo
from tests.app.console_auth import console_login
from tests.app.subscriptions.support import customer, staff

SRC = Path(__file__).resolve().parents[2] / "src" / "prorata"


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split("; ")}


@pytest.mark.parametrize("url", ["/", "/plans/", "/accounts/login/", "/accounts/signup/",
                                 "/api/v1/docs", "/api/v1/openapi.json", "/console/login/",
                                 "/no-such-page/", "/healthz"])
def test_every_answer_carries_the_policy(client, demo_catalog, url):
    policy = _policy(client.get(url))
    assert policy["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval', no host
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]  # as X-Frame-Options: DENY


def test_the_signed_in_pages_carry_it_and_the_card_frame_may_be_framed_here(client, demo_catalog):
    account, user = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    client.force_login(user)
    for url in (f"/billing/{account.pk}/", f"/billing/{account.pk}/checkout/", "/profile/"):
        assert _policy(client.get(url))["frame-ancestors"] == ["'none'"], url
    frame = client.get("/sandbox-gateway/v1/card-form")
    assert frame["X-Frame-Options"] == "SAMEORIGIN"
    assert _policy(frame)["frame-ancestors"] == ["'self'"]


def test_the_console_carries_it(client, demo_catalog):
    console_login(client, staff("agent@prorata.example", "support_agent"))
    response = client.get("/console/")
    assert response.status_code == 200
    assert _policy(response)["script-src"] == ["'self'"]


@override_settings(PRORATA_PAYMENT_GATEWAY="stripe")
def test_with_stripe_the_policy_lets_stripe_js_and_its_frames_in(client, demo_catalog):
    policy = _policy(client.get("/plans/"))
    assert policy["script-src"] == ["'self'", "https://js.stripe.com"]
    assert policy["frame-src"] == ["'self'", "https://js.stripe.com", "https://hooks.stripe.com"]
    assert policy["connect-src"] == ["'self'", "https://api.stripe.com"]
    assert policy["form-action"] == ["'self'", "https://hooks.stripe.com"]
    assert policy["object-src"] == ["'none'"]


# --- no inline script in any template ------------------------------------------------------------

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>",
                           re.IGNORECASE)
HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
JS_URL = re.compile(r"""(href|src|action)\s*=\s*["']\s*javascript:""", re.IGNORECASE)


def test_no_template_has_an_inline_script_or_handler():
    """What the policy refuses, found before a browser does: a ``<script>`` without ``src`` (JSON
    data blocks excepted: they do not run), an ``on…=`` handler attribute, a ``javascript:`` URL."""
    found = []
    for template in sorted(SRC.glob("**/templates/**/*.html")):
        text = template.read_text()
        for pattern in (INLINE_SCRIPT, HANDLER, JS_URL):
            found += [f"{template.relative_to(SRC)}: {m.group(0)}" for m in pattern.finditer(text)]
    assert found == []


def test_the_scan_finds_what_it_looks_for():
    assert INLINE_SCRIPT.search('<script>alert(1)</script>')
    assert not INLINE_SCRIPT.search('<script src="/static/x.js" defer></script>')
    assert not INLINE_SCRIPT.search('<script type="application/json" id="s">{}</script>')
    assert HANDLER.search('<form onsubmit="return confirm(1)">')
    assert not HANDLER.search('<form data-confirm="Sure?">')
    assert JS_URL.search('<a href="javascript:void(0)">')


# --- the API documentation ---------------------------------------------------------------------

DOCS = ("/api/v1/docs", "/api/v1/openapi.json")


@pytest.fixture
def people(db):
    catalog_load_demo()
    _, user = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    agent = staff("agent@prorata.example", "support_agent")
    return user, agent


def _statuses(client: Client) -> list[int]:
    return [client.get(url).status_code for url in DOCS]


def test_the_api_docs_are_public_by_default(client, people):
    assert _statuses(client) == [200, 200]


@override_settings(PRORATA_API_DOCS="staff")
def test_the_api_docs_can_be_for_staff_only(people):
    user, agent = people
    assert _statuses(Client()) == [404, 404]
    customer_client = Client()
    customer_client.force_login(user)
    assert _statuses(customer_client) == [404, 404]
    unverified = Client()
    unverified.force_login(agent)  # staff, but without the console's second factor
    assert _statuses(unverified) == [404, 404]
    assert _statuses(console_login(Client(), agent)) == [200, 200]


@override_settings(PRORATA_API_DOCS="off")
def test_the_api_docs_can_be_off(people):
    _, agent = people
    assert _statuses(Client()) == [404, 404]
    assert _statuses(console_login(Client(), agent)) == [404, 404]
    # The API itself still answers.
    assert Client().get("/api/v1/").status_code == 200
