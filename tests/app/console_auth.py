"""Signing staff in to the console in tests: the session verified by a second factor, as after
a real sign-in with the authenticator's code (tests/app/console/test_second_factor.py signs in
for real)."""

from __future__ import annotations

from django.test import Client


def console_login(client: Client, user) -> Client:
    """``client`` signed in as ``user``; for staff, with a confirmed TOTP device whose check this
    session passed. Customers are only signed in (the console refuses them anyway)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client.force_login(user)
    if user.is_staff:
        device = (TOTPDevice.objects.filter(user=user, confirmed=True).first()
                  or TOTPDevice.objects.create(user=user, name="test device", confirmed=True))
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client
