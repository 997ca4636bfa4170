"""The embedded mode's mail directory: one .eml file per message, newest last, whole or absent."""

from __future__ import annotations

import email
from email import policy

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives, get_connection

BACKEND = "prorata.notifications.backends.EmlDirectoryBackend"


def message(subject: str) -> EmailMultiAlternatives:
    result = EmailMultiAlternatives(subject=subject, body=f"Body of {subject} — déjà",
                                    from_email="billing@prorata.example",
                                    to=["alice@bistro.example"])
    result.attach_alternative(f"<p>{subject}</p>", "text/html")
    return result


def test_each_message_is_its_own_eml_file_listed_in_the_order_sent(tmp_path):
    connection = get_connection(BACKEND, file_path=tmp_path / "mail")
    subjects = [f"Receipt {n}" for n in range(12)]
    for subject in subjects:
        assert connection.send_messages([message(subject)]) == 1
    files = sorted((tmp_path / "mail").iterdir())  # `ls` order
    assert [f.suffix for f in files] == [".eml"] * 12
    parsed = [email.message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    assert [m["Subject"] for m in parsed] == subjects  # newest last
    assert parsed[0].get_body(("plain",)).get_content().strip() == "Body of Receipt 0 — déjà"
    assert parsed[0].get_body(("html",)).get_content().strip() == "<p>Receipt 0</p>"


def test_a_message_without_recipients_writes_nothing(tmp_path):
    connection = get_connection(BACKEND, file_path=tmp_path)
    empty = message("Nobody")
    empty.to = []
    assert connection.send_messages([empty]) == 0
    assert list(tmp_path.iterdir()) == []


def test_a_file_where_the_directory_should_be_is_refused(tmp_path):
    (tmp_path / "mail").write_text("not a directory")
    with pytest.raises(ImproperlyConfigured, match="is a file; it must be a directory"):
        get_connection(BACKEND, file_path=tmp_path / "mail")


def test_no_half_written_file_is_left_when_writing_fails(tmp_path, monkeypatch):
    import os

    connection = get_connection(BACKEND, file_path=tmp_path)

    def full_disk(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        connection.send_messages([message("Lost")])
    assert list(tmp_path.iterdir()) == []


def test_the_embedded_mode_writes_eml_files_under_var_mail(settings):
    from prorata.settings import base

    if base.EMAIL_BACKEND != BACKEND:  # pragma: no cover - an SMTP server is configured here
        pytest.skip("PRORATA_SMTP_HOST or PRORATA_EMAIL_BACKEND is set in this environment")
    assert base.EMAIL_FILE_PATH == base.VAR_DIR / "mail"
