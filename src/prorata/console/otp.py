"""Enrolling the console's second factor: an authenticator app (TOTP) and ten recovery codes."""

from __future__ import annotations

from base64 import b32encode
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from prorata.accounts.models import User
from prorata.accounts.services import audit_record
from prorata.accounts.throttle import client_ip


def otp_setup(request: HttpRequest, site: Any) -> HttpResponse:
    """Show the key (and its otpauth:// link) of a new, unconfirmed TOTP device; a correct code
    confirms it, creates the recovery codes, verifies this session and shows the codes once."""
    import django_otp
    from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from prorata.console.site import RECOVERY_CODES, has_confirmed_device, render_console

    user: User = request.user  # type: ignore[assignment]
    if has_confirmed_device(user):
        return HttpResponseRedirect(reverse("admin:index"))
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    error, codes = "", []
    if request.method == "POST":
        if device.verify_token((request.POST.get("code") or "").strip()):
            with transaction.atomic():
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                static = StaticDevice.objects.create(user=user, name="Recovery codes",
                                                     confirmed=True)
                codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
                StaticToken.objects.bulk_create(
                    [StaticToken(device=static, token=code) for code in codes])
                audit_record(actor=user, action="auth.second_factor_enrolled", obj=user,
                             ip=client_ip(request),
                             after={"devices": ["totp", "recovery codes"]})
            django_otp.login(request, device)
        else:
            error = "This code is not right. Type the 6 digits your app shows now."
    return render_console(request, site, "admin/console/otp_setup.html", {
        "title": "Set up your second factor", "device": device,
        "secret": b32encode(device.bin_key).decode(), "config_url": device.config_url,
        "error": error, "codes": codes,
    })
