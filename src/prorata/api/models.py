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


class OperatorKeyScope(models.TextChoices):
    """What an operator key may do: read, or read and write (every write is audited)."""

    READ_ONLY = "read_only", _("Read only")
    READ_WRITE = "read_write", _("Read and write")


class OperatorKey(models.Model):
    """A secret key with which the operator's own backend drives billing over the operator API
    (``/api/v1/customers…``, issue 17), created in the console by an operator.

    A key reads ``prorata_sk_<mode>_<prefix>_<secret>`` (``mode``: ``live``, or ``test`` for a
    key made while the movable clock is on, ``test_mode``). As for personal tokens, only the
    SHA-256 of the whole key is stored; the key is shown once, at creation. A test key works
    only while the clock is movable and a live key only on the wall clock, so that a key copied
    between a demo and a production database opens neither.

    ``principal`` is the key's own user (never a person, no password, not staff, no account):
    the engine records it as who placed an order or cancelled a renewal, so that every audit
    entry of a write made through the API names the key (``actor_email``
    ``key-<prefix>@operator-keys.invalid``). Written only by :mod:`prorata.api.services`.
    Other credentials sit beside it: :class:`ApiToken` (a person's) and
    :class:`prorata.licenses.models.EntitlementKey` (the webinar product's, entitlements only).
    """

    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=16, unique=True)
    secret_hash = models.CharField(_("secret hash"), max_length=64)
    scope = models.CharField(_("scope"), max_length=16, choices=OperatorKeyScope.choices)
    test_mode = models.BooleanField(_("test mode"), default=False)
    principal = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="operator_key",
        verbose_name=_("acts as"),
    )
    created_at = models.DateTimeField(_("created at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", verbose_name=_("created by"),
    )
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(_("last used from"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", verbose_name=_("revoked by"),
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("operator API key")
        verbose_name_plural = _("operator API keys")

    def __str__(self) -> str:
        return f"{self.name} ({self.display})"

    @property
    def mode(self) -> str:
        return "test" if self.test_mode else "live"

    @property
    def display(self) -> str:
        """The non-secret start of the key, as the console lists it."""
        return f"prorata_sk_{self.mode}_{self.prefix}_…"

    @property
    def may_write(self) -> bool:
        return self.scope == OperatorKeyScope.READ_WRITE and self.revoked_at is None


class OperatorRequest(models.Model):
    """One write of the operator API under its ``Idempotency-Key`` (one namespace for all the
    operator's keys): the request's fingerprint and, once it succeeded, the answer replayed to
    a retry. ``status`` is ``0`` while the first request runs."""

    key = models.CharField(max_length=200, unique=True)
    fingerprint = models.CharField(max_length=64)
    operator_key = models.ForeignKey(OperatorKey, on_delete=models.PROTECT, related_name="+")
    status = models.PositiveSmallIntegerField(default=0)
    body = models.BinaryField(default=b"")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.key} ({self.status or 'running'})"
