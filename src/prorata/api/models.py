"""Personal API tokens (DESIGN §5): a user's credential for the JSON API.

A token reads ``prorata_<prefix>_<secret>``. The ``prefix`` (10 characters, not secret) finds the row
and tells tokens apart on the tokens page; the database keeps only the SHA-256 of the whole token
(``secret_hash``): the token is shown once, at creation, and cannot be recovered. SHA-256 without
salt or stretching is enough because the secret is 256 random bits, not a password a person chose.

All instants come from the project clock (``prorata.common.clock.now``); a token is usable while
it is neither revoked nor past ``expires_at`` (``[created_at, expires_at)``).
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ApiToken(models.Model):
    """One personal API token; written only by :mod:`prorata.api.services`."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens",
        verbose_name=_("user"),
    )
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=16, unique=True)
    secret_hash = models.CharField(_("secret hash"), max_length=64)
    created_at = models.DateTimeField(_("created at"))
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        indexes = [models.Index(fields=["user", "created_at"], name="api_token_user_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.display})"

    @property
    def display(self) -> str:
        """What the tokens page shows: the non-secret start of the token."""
        return f"prorata_{self.prefix}_…"

    def status_at(self, instant: datetime) -> str:
        """``"revoked"``, ``"expired"`` or ``"active"`` at ``instant``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and instant >= self.expires_at:
            return "expired"
        return "active"
