"""The console's sign-in form: Django admin's with a second factor, throttled exactly like the
customer sign-in.

Failures are counted by :mod:`prorata.accounts.throttle` per address from one IP and per IP (one table for both
sign-ins, so a locked address is locked everywhere); the failure that starts a lockout writes the
``auth.lockout`` audit entry; while locked, the password is not even checked. A wrong or missing
second-factor code, for a staff member who has one, is a failure like a wrong password.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from prorata.accounts.credentials import signin_succeeded
from prorata.accounts.forms import lockout_message
from prorata.accounts.throttle import client_ip, signin_block, signin_failure_record

WRONG_CODE = ("The code is wrong or missing: type the 6 digits your authenticator app shows now, "
              "or one of your recovery codes.")


class ConsoleSignInForm(AdminAuthenticationForm):
    otp_token = forms.CharField(
        label="Code", required=False, max_length=16, strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def clean(self) -> dict[str, Any]:
        email = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if not email or not password:
            return self.cleaned_data  # the required fields say what is missing
        ip = client_ip(self.request) if self.request is not None else None
        block = signin_block(email=email, ip=ip)
        if block is not None:
            raise ValidationError(lockout_message(block), code="throttled")
        try:
            cleaned = super().clean()
            self._check_second_factor()
        except ValidationError as error:
            # A customer's right password is refused here too ("invalid_login" for non-staff):
            # counted, since guessing staff passwords through the console is what is throttled.
            if getattr(error, "code", None) in ("invalid_login", "otp_wrong"):
                block = signin_failure_record(email=email, ip=ip)
                if block is not None:
                    raise ValidationError(
                        [error, ValidationError(lockout_message(block), code="throttled")]
                    ) from None
            raise
        signin_succeeded(user=self.get_user())
        return cleaned

    def _check_second_factor(self) -> None:
        from django_otp import match_token, user_has_device

        user = self.get_user()
        if not user_has_device(user, confirmed=True):
            return  # enrols on the next page, and can do nothing else before
        device = match_token(user, (self.cleaned_data.get("otp_token") or "").replace(" ", ""))
        if device is None:
            raise ValidationError(WRONG_CODE, code="otp_wrong")
        # django-otp's user_logged_in handler marks the session verified by this device.
        user.otp_device = device
