"""Sign-in throttling per address from one IP and per IP, by the project clock, with lockouts
audited."""

from __future__ import annotations

from datetime import timedelta

from prorata.accounts.models import AuditEntry, SignInFailure, User
from prorata.accounts.throttle import MAX_PER_ADDRESS, MAX_PER_IP, client_ip
from tests.app.web.conftest import PASSWORD, page_text, sign_in

ADDRESS_LOCKED = (
    "Too many failed sign-ins for this address. Try again in 15 minutes or reset your password."
)


def fail(client, email="alice@acme.example", times=1, ip="203.0.113.7"):
    for _ in range(times):
        response = sign_in(client, email, "wrong password", ip=ip)
    return response


def test_the_fifth_failure_locks_the_address_and_says_for_how_long(client, alice):
    # given four failures
    fail(client, times=MAX_PER_ADDRESS - 1)
    assert AuditEntry.objects.filter(action="auth.lockout").count() == 0
    # when the fifth one happens
    text = page_text(fail(client))
    # then the page says the password was wrong, and that the address is locked
    assert "The email or password is incorrect." in text
    assert ADDRESS_LOCKED in text


def test_a_locked_address_is_refused_even_with_the_right_password(client, alice, clock):
    fail(client, times=MAX_PER_ADDRESS)
    clock.advance(timedelta(minutes=5))
    response = sign_in(client, "alice@acme.example", PASSWORD)
    assert response.status_code == 200
    assert (
        "Too many failed sign-ins for this address. Try again in 10 minutes or reset your password."
        in page_text(response)
    )
    assert "_auth_user_id" not in client.session
    # refused attempts do not extend the lockout
    assert SignInFailure.objects.filter(email="alice@acme.example").count() == MAX_PER_ADDRESS


def test_failures_from_elsewhere_do_not_lock_the_owner_out(client, alice):
    """Issue 18: an attacker guessing Alice's password from their network locks that pair only;
    Alice, from hers, signs in (and her successful sign-in does not unlock the attacker)."""
    fail(client, times=MAX_PER_ADDRESS, ip="192.0.2.66")
    assert ADDRESS_LOCKED in page_text(sign_in(client, "alice@acme.example", PASSWORD,
                                               ip="192.0.2.66"))
    from django.test import Client

    assert sign_in(Client(), "alice@acme.example", PASSWORD, ip="198.51.100.1").status_code == 302


def test_the_last_minute_is_said_in_the_singular(client, alice, clock):
    fail(client, times=MAX_PER_ADDRESS)
    clock.advance(timedelta(minutes=14, seconds=30))
    assert (
        "Try again in 1 minute or reset your password."
        in page_text(sign_in(client, "alice@acme.example", PASSWORD))
    )


def test_once_the_window_has_passed_the_address_signs_in_again(client, alice, clock):
    fail(client, times=MAX_PER_ADDRESS)
    # when the project clock moves past the 15-minute window
    clock.advance(timedelta(minutes=15))
    # then the right password works again
    response = sign_in(client, "alice@acme.example", PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/billing/"


def test_an_address_lockout_is_audited_once(client, alice):
    fail(client, times=MAX_PER_ADDRESS)
    sign_in(client, "alice@acme.example", PASSWORD)  # refused, not audited again
    (entry,) = AuditEntry.objects.filter(action="auth.lockout")
    assert entry.actor is None
    assert (entry.object_type, entry.object_id) == ("accounts.user", str(alice.pk))
    assert entry.ip == "203.0.113.7"
    assert entry.after == {
        "scope": "address", "email": "alice@acme.example", "ip": "203.0.113.7", "failures": 5,
        "window_minutes": 15, "until": "2026-03-11T00:15:00Z",
    }


def test_the_lockout_is_per_address_not_per_person_typing(client, alice, clock):
    User.objects.create_user("bob@acme.example", PASSWORD)
    fail(client, times=MAX_PER_ADDRESS, email="ALICE@acme.example")
    # the address is locked whatever its capitals ...
    assert ADDRESS_LOCKED in page_text(sign_in(client, "alice@ACME.example", PASSWORD))
    # ... and another address from another network is not
    assert sign_in(client, "bob@acme.example", PASSWORD, ip="198.51.100.9").status_code == 302


def test_a_successful_sign_in_clears_the_address_counter(client, alice):
    fail(client, times=MAX_PER_ADDRESS - 1)
    assert sign_in(client, "alice@acme.example", PASSWORD).status_code == 302
    client.logout()
    # four more failures do not lock: the count started again
    text = page_text(fail(client, times=MAX_PER_ADDRESS - 1))
    assert "Too many failed sign-ins" not in text
    assert sign_in(client, "alice@acme.example", PASSWORD).status_code == 302


def test_many_failures_from_one_ip_lock_that_ip(client, alice, clock):
    # given MAX_PER_IP (100) failures from one IP, each for a different address (none is locked)
    for number in range(MAX_PER_IP):
        response = fail(client, email=f"guess{number}@acme.example", ip="192.0.2.50")
    assert "Too many failed sign-ins from your network. Try again in 15 minutes." in page_text(response)
    # then even a correct sign-in from that IP is refused ...
    response = sign_in(client, "alice@acme.example", PASSWORD, ip="192.0.2.50")
    assert "Too many failed sign-ins from your network. Try again in 15 minutes." in page_text(response)
    assert "_auth_user_id" not in client.session
    # ... while another IP signs in
    assert sign_in(client, "alice@acme.example", PASSWORD, ip="192.0.2.51").status_code == 302


def test_the_ip_lockout_is_audited_and_ends_with_the_window(client, alice, clock):
    for number in range(MAX_PER_IP):
        fail(client, email=f"guess{number}@acme.example", ip="192.0.2.50")
    (entry,) = AuditEntry.objects.filter(action="auth.lockout")
    assert entry.object_id == ""
    assert entry.after == {
        "scope": "ip", "email": "", "ip": "192.0.2.50", "failures": MAX_PER_IP,
        "window_minutes": 15,
        "until": "2026-03-11T00:15:00Z",
    }
    clock.advance(timedelta(minutes=15))
    assert sign_in(client, "alice@acme.example", PASSWORD, ip="192.0.2.50").status_code == 302


def test_colleagues_behind_one_proxy_are_not_locked_out_by_twenty_typos(client, alice):
    """Issue 18: twenty failures from one office IP (the old IP limit) lock nobody else out."""
    for number in range(20):
        fail(client, email=f"colleague{number % 10}@acme.example", ip="192.0.2.80")
    assert sign_in(client, "alice@acme.example", PASSWORD, ip="192.0.2.80").status_code == 302


def test_failures_age_out_one_by_one(client, alice, clock):
    # failures at minutes 0, 1, 2, 3 and 4 lock the address until minute 15
    for _ in range(MAX_PER_ADDRESS):
        fail(client)
        clock.advance(timedelta(minutes=1))
    clock.advance(timedelta(minutes=9, seconds=59))  # 14:59
    assert "Try again in 1 minute" in page_text(sign_in(client, "alice@acme.example", PASSWORD))
    clock.advance(timedelta(seconds=1))  # 15:00: the first failure has left the window
    assert sign_in(client, "alice@acme.example", PASSWORD).status_code == 302


def test_old_failures_are_purged(client, alice, clock):
    fail(client, times=3)
    clock.advance(timedelta(hours=1))
    fail(client, email="someone@acme.example")
    assert list(SignInFailure.objects.values_list("email", flat=True)) == ["someone@acme.example"]


def test_the_client_ip_is_remote_addr_unless_a_proxy_is_trusted(rf, settings):
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 192.0.2.9")
    assert client_ip(request) == "10.0.0.1"
    settings.PRORATA_TRUST_X_FORWARDED_FOR = True
    assert client_ip(request) == "192.0.2.9"  # the entry the trusted proxy appended
    assert client_ip(rf.get("/", REMOTE_ADDR="not an ip")) is None
