"""Static files served by the project itself; cookie and CSRF settings."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from django.test import Client

from tests.app.web.conftest import PASSWORD, sign_in

STATIC = Path(__file__).resolve().parents[3] / "src" / "prorata" / "web" / "static" / "prorata"
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"


def test_the_project_serves_its_stylesheet_and_htmx(client, clock):
    for name, kind in [("app.css", "text/css"), ("htmx.min.js", "text/javascript")]:
        response = client.get(f"/static/prorata/{name}")
        assert response.status_code == 200, name
        assert response["Content-Type"].startswith(kind)
        assert b"".join(response.streaming_content) == (STATIC / name).read_bytes()


def test_htmx_is_the_pinned_release_with_its_license_noted():
    assert hashlib.sha256((STATIC / "htmx.min.js").read_bytes()).hexdigest() == HTMX_SHA256
    notes = (STATIC / "htmx.min.js.LICENSE.txt").read_text()
    assert "htmx 2.0.11" in notes and HTMX_SHA256 in notes and "Zero-Clause BSD" in notes


def test_every_page_loads_only_from_this_site(client, alice):
    pages = ["/", "/accounts/login/", "/accounts/password_reset/"]
    for path in pages:
        html = client.get(path).content.decode()
        assert not re.search(r'(src|href|action)="(https?:)?//', html), path
        assert '<script src="/static/prorata/htmx.min.js" defer></script>' in html, path
        assert '<link rel="stylesheet" href="/static/prorata/app.css">' in html, path
    sign_in(client, "alice@acme.example", PASSWORD)
    html = client.get("/profile/").content.decode()
    assert not re.search(r'(src|href|action)="(https?:)?//', html)


def test_htmx_requests_carry_the_csrf_token(client, clock):
    html = client.get("/").content.decode()
    token = re.search(r"hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'", html).group(1)
    assert len(token) == 64


def test_every_form_on_the_profile_carries_the_csrf_token(signed_in):
    html = signed_in.get("/profile/").content.decode()
    forms = re.findall(r"<form\b.*?</form>", html, flags=re.S)
    assert len(forms) == 5  # language switch, sign-out, e-mail, password, language
    assert all('name="csrfmiddlewaretoken"' in form for form in forms)


def test_a_post_without_the_csrf_token_is_refused(clock):
    browser = Client(enforce_csrf_checks=True)
    assert browser.post("/accounts/login/", {"username": "a@b.example", "password": "x"}).status_code == 403
    assert browser.post("/accounts/password_reset/", {"email": "a@b.example"}).status_code == 403


def test_the_session_cookie_is_http_only_and_same_site_lax(client, alice):
    response = sign_in(client, "alice@acme.example", PASSWORD)
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert not cookie["secure"]  # plain HTTP here: PRORATA_HTTPS is off


def settings_under(env: dict[str, str]) -> dict[str, object]:
    code = (
        "import json; from prorata.settings import base as s; print(json.dumps({k: getattr(s, k, None) "
        "for k in ['SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'LANGUAGE_COOKIE_SECURE', "
        "'SESSION_COOKIE_HTTPONLY', 'SESSION_COOKIE_SAMESITE', 'CSRF_COOKIE_SAMESITE', "
        "'SECURE_PROXY_SSL_HEADER']}))"
    )
    out = subprocess.run(  # noqa: S603 -- this Python, a fixed script
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True,
        check=True,
    ).stdout
    return json.loads(out)


def test_over_https_every_cookie_is_secure():
    values = settings_under({"PRORATA_HTTPS": "1"})
    assert values == {
        "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True, "LANGUAGE_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True, "SESSION_COOKIE_SAMESITE": "Lax",
        "CSRF_COOKIE_SAMESITE": "Lax", "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }
    assert settings_under({"PRORATA_HTTPS": "0"})["SESSION_COOKIE_SECURE"] is None
