"""``EmlDirectoryBackend``: each e-mail as its own ``.eml`` file in a directory (the embedded mode's
``var/mail/``), openable in any mail client.

File names start with the instant of delivery (real time, microseconds) and the process id, so that
``ls`` lists them in the order they were sent, newest last, and two worker processes never write the
same name. A file appears whole or not at all: it is written under a hidden temporary name, then
renamed (a mail client or ``ls`` never sees half a message).
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

from prorata.common.clock import wall_now

_sequence = itertools.count()


class EmlDirectoryBackend(BaseEmailBackend):
    """Writes each message to ``<file_path>/<YYYYmmdd-HHMMSS-ffffff>-<pid>-<n>.eml`` (real time,
    UTC). ``file_path`` defaults to ``settings.EMAIL_FILE_PATH``; the directory is created if
    missing."""

    def __init__(self, *args: Any, file_path: str | os.PathLike[str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        path = file_path if file_path is not None else getattr(settings, "EMAIL_FILE_PATH", None)
        if not path:
            raise ImproperlyConfigured("EmlDirectoryBackend needs EMAIL_FILE_PATH (a directory).")
        self.directory = Path(path)
        if self.directory.exists() and not self.directory.is_dir():
            raise ImproperlyConfigured(
                f"EMAIL_FILE_PATH {str(self.directory)!r} is a file; it must be a directory.")
        self.directory.mkdir(parents=True, exist_ok=True)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            self._write(message.message().as_bytes())
            sent += 1
        return sent

    def _write(self, content: bytes) -> Path:
        name = f"{wall_now():%Y%m%d-%H%M%S-%f}-{os.getpid()}-{next(_sequence):06d}.eml"
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(content)
            target = self.directory / name
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target
