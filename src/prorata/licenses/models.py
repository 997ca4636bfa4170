"""License pools, invitations and the webinar product's entitlement keys (DESIGN §4, S22).

- A subscription's ``quantity`` is its pool of licenses; a :class:`LicenseAssignment` gives one of
  them to one member of the subscription's account. There are never more assignments than licenses:
  :mod:`prorata.licenses.services` counts them under the account and subscription locks.
- An :class:`Invitation` asks a person, by e-mail, to join an account: its link carries a random
  nonce of which only the SHA-256 is kept, it is used at most once and it expires on the project
  clock (``[created_at, expires_at)``).
- An :class:`EntitlementKey` is what the webinar product sends to ``GET /api/v1/entitlements/…``.
  Operators create them in the console; the key is shown once and only its SHA-256 is kept. A key
  reads entitlements and nothing else: no other endpoint accepts it.

Written only by :mod:`prorata.licenses.services`.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from prorata.accounts.models import Account, Membership
from prorata.subscriptions.models import Subscription


class LicenseAssignment(models.Model):
    """One license of ``subscription`` held by ``member`` (a member of the same account)."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="license_assignments",
        verbose_name=_("subscription"),
    )
    member = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="license_assignments",
        verbose_name=_("member"),
    )
    assigned_at = models.DateTimeField(_("assigned at"))
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", verbose_name=_("assigned by"),
    )

    class Meta:
        verbose_name = _("license assignment")
        verbose_name_plural = _("license assignments")
        ordering = ["subscription", "assigned_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "member"],
                                    name="license_one_per_member"),
        ]
        indexes = [models.Index(fields=["member"], name="license_member")]

    def __str__(self) -> str:
        return f"{self.member} · {self.subscription_id}"


class Invitation(models.Model):
    """An invitation of ``email`` to join ``account`` as an organizer (and admin or billing
    contact if ``is_admin`` / ``is_billing_contact``), with a license at once if ``with_license``.

    Usable once (``accepted_at``), until ``expires_at`` (project clock), unless ``revoked_at``.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="invitations",
                                verbose_name=_("account"))
    email = models.EmailField(_("e-mail address"))
    is_admin = models.BooleanField(_("admin"), default=False)
    is_billing_contact = models.BooleanField(_("billing contact"), default=False)
    with_license = models.BooleanField(_("with a license"), default=False)
    nonce_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("sent at"))
    expires_at = models.DateTimeField(_("expires at"))
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "email"], name="invitation_pending",
                         condition=Q(accepted_at__isnull=True, revoked_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.account}"

    def status_at(self, instant: datetime) -> str:
        """``"accepted"``, ``"revoked"``, ``"expired"`` or ``"pending"`` at ``instant``."""
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        if instant >= self.expires_at:
            return "expired"
        return "pending"


class EntitlementKey(models.Model):
    """A credential of the webinar product for the entitlement endpoint only.

    The key reads ``prorata_ent_<prefix>_<secret>``; ``prefix`` finds the row, ``secret_hash`` is
    the SHA-256 of the whole key (256 random bits: no stretching needed). Usable until revoked.
    """

    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=16, unique=True)
    secret_hash = models.CharField(_("secret hash"), max_length=64)
    created_at = models.DateTimeField(_("created at"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+",
                                   verbose_name=_("created by"))
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("entitlement API key")
        verbose_name_plural = _("entitlement API keys")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} (prorata_ent_{self.prefix}_…)"

    @property
    def display(self) -> str:
        return f"prorata_ent_{self.prefix}_…"


class LicenseRelease(models.Model):
    """A member chosen to lose their license when an order leaves fewer licenses than are
    assigned (issue 13). Pending (``order`` empty) until the order is placed; the order then
    frees the license in its own transaction and records itself here (``released_at``)."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE,
                                     related_name="license_releases")
    member = models.ForeignKey(Membership, on_delete=models.SET_NULL, null=True,
                               related_name="+")
    email = models.EmailField(_("e-mail address"))
    chosen_at = models.DateTimeField(_("chosen at"))
    chosen_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+")
    order = models.ForeignKey("subscriptions.Order", null=True, blank=True,
                              on_delete=models.PROTECT, related_name="license_releases")
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)

    class Meta:
        ordering = ["subscription", "email", "id"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "member"],
                                    condition=Q(order__isnull=True),
                                    name="license_release_pending_once"),
        ]

    def __str__(self) -> str:
        return f"{self.email} · {self.subscription_id}"
