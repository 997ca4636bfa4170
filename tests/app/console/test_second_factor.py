"""The console's second factor (TOTP with recovery codes): enrolment, sign-in with the code,
refusals counted as failed sign-ins."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from prorata.accounts.models import AuditEntry, SignInFailure
from tests.app.subscriptions.support import staff

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-staff-password-1"


def code_of(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


@pytest.fixture
def agent(clock):
    user = staff("sam@prorata.example", "support_agent")
    user.set_password(PASSWORD)
    user.save()
    return user


def sign_in(client: Client, email: str, password: str, code: str = ""):
    return client.post("/console/login/?next=/console/",
                       {"username": email, "password": password, "otp_token": code})


def test_a_staff_member_without_a_second_factor_must_enrol_before_anything_else(agent):
    client = Client()
    assert sign_in(client, agent.email, PASSWORD).status_code == 302
    response = client.get("/console/")
    assert response.status_code == 302 and response["Location"].startswith("/console/login/")
    assert client.get(response["Location"])["Location"] == "/console/2fa/setup/"
    assert client.get("/console/support/supportrequest/").status_code == 302
    page = client.get("/console/2fa/setup/").content.decode()
    assert "otpauth://totp/Prorata%20console%3Asam%40prorata.example" in page
    device = TOTPDevice.objects.get(user=agent, confirmed=False)
    wrong = client.post("/console/2fa/setup/", {"code": "000000" if code_of(device) != "000000"
                                                else "111111"})
    assert "This code is not right." in wrong.content.decode()
    # django-otp then refuses codes for a second (its own throttle, on the wall clock): as if
    # the agent waited that second.
    device.refresh_from_db()
    device.throttle_reset()
    page = client.post("/console/2fa/setup/", {"code": code_of(device)}).content.decode()
    codes = re.findall(r"<li><code>(\w+)</code></li>", page)
    assert len(codes) == 10
    assert client.get("/console/").status_code == 200
    assert AuditEntry.objects.get(action="auth.second_factor_enrolled").actor == agent
    # next time: password and code; a recovery code works once
    fresh = Client()
    response = sign_in(fresh, agent.email, PASSWORD, codes[0])
    assert response.status_code == 302 and fresh.get("/console/").status_code == 200
    again = sign_in(Client(), agent.email, PASSWORD, codes[0])
    assert again.status_code == 200 and "The code is wrong or missing" in again.content.decode()


def test_with_a_second_factor_the_code_is_required_and_a_wrong_one_is_a_failure(agent):
    device = TOTPDevice.objects.create(user=agent, name="phone", confirmed=True)
    client = Client()
    for code in ("", "12345x"):
        response = sign_in(client, agent.email, PASSWORD, code)
        assert response.status_code == 200
        assert "The code is wrong or missing" in response.content.decode()
    assert SignInFailure.objects.filter(email=agent.email).count() == 2
    assert "_auth_user_id" not in client.session
    device.refresh_from_db()
    device.throttle_reset()  # django-otp's own wall-clock delay after wrong codes, waited out
    response = sign_in(client, agent.email, PASSWORD, code_of(device))
    assert response.status_code == 302
    assert client.get("/console/support/supportrequest/").status_code == 200
    assert SignInFailure.objects.filter(email=agent.email).count() == 0


def test_the_enrolment_page_is_for_staff_only(clock):
    from tests.app.subscriptions.support import customer

    _account, alice = customer("Acme", "US", "alice@acme.example")
    client = Client()
    client.force_login(alice)
    response = client.get("/console/2fa/setup/")
    assert response.status_code == 302 and response["Location"].startswith("/console/login/")
    assert not TOTPDevice.objects.exists()
