"""E-mail backends for outbox tests: one whose server refuses every message, one that is down."""

from __future__ import annotations

import smtplib

from django.core.mail.backends.base import BaseEmailBackend


class RefusingBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise smtplib.SMTPDataError(451, b"Try again later")


class DownBackend(BaseEmailBackend):
    def open(self):
        raise ConnectionRefusedError(111, "Connection refused")

    def send_messages(self, email_messages):  # pragma: no cover - never reached
        raise AssertionError("a closed connection sent mail")
