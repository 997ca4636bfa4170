"""The console's sign-in form: Django admin's, throttled exactly like the customer sign-in.

Failures are counted by :mod:`prorata.accounts.throttle` per address and per IP (one table for both
sign-ins, so a locked address is locked everywhere); the failure that starts a lockout writes the
``auth.lockout`` audit entry; while locked, the password is not even checked.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from prorata.accounts.credentials import signin_succeeded
from prorata.accounts.forms import lockout_message
from prorata.accounts.throttle import client_ip, signin_block, signin_failure_record


class ConsoleSignInForm(AdminAuthenticationForm):
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
        except ValidationError as error:
            # A customer's right password is refused here too ("invalid_login" for non-staff):
            # counted, since guessing staff passwords through the console is what is throttled.
            if getattr(error, "code", None) == "invalid_login":
                block = signin_failure_record(email=email, ip=ip)
                if block is not None:
                    raise ValidationError(
                        [error, ValidationError(lockout_message(block), code="throttled")]
                    ) from None
            raise
        signin_succeeded(user=self.get_user())
        return cleaned
