"""Absolute links for e-mails (and anything read outside a request): ``PRORATA_BASE_URL`` + a path.

E-mail contexts carry site paths (``/billing/12/documents/34.pdf``, from ``reverse()``); the
templates' ``absolute_url`` filter and Python code call :func:`absolute_url` at rendering time, so
a change of address applies to e-mails still in the outbox.
"""

from __future__ import annotations

from django.conf import settings


def absolute_url(path: str) -> str:
    """``path`` under ``settings.PRORATA_BASE_URL``; an absolute ``http(s)://`` URL is returned as
    it is, an empty path as ``""``."""
    if not path:
        return ""
    if path.startswith(("http://", "https://")):
        return path
    return f"{settings.PRORATA_BASE_URL}/{path.lstrip('/')}"
