"""People, customer accounts, their roles, and the append-only audit log (DESIGN §5).

- :class:`User` signs in with an e-mail address (unique, case-insensitive) and an argon2 password.
- :class:`Account` is the customer organisation; :class:`Membership` gives a user roles in it.
- Staff roles (support agent, corporate advisor, operator) are Django groups with permissions.
- :class:`AuditEntry` rows are written by :func:`prorata.accounts.services.audit_record` only and can
  be neither updated nor deleted (the model refuses it, and database triggers refuse it too).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **fields: Any) -> User:
        if not email:
            raise ValueError("An e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        return self._create(email, password, **fields)

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email__iexact=username)


class User(AbstractUser):
    """A person who signs in with ``email``; ``language`` is their preferred one ("" = browser's)."""

    username = None  # type: ignore[assignment]
    email = models.EmailField(_("email address"), unique=True)
    language = models.CharField(
        _("language"), max_length=8, blank=True, choices=settings.LANGUAGES, default=""
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []
    objects = UserManager()  # type: ignore[misc]

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        full = self.get_full_name()
        return f"{full} <{self.email}>" if full else self.email

    # A session is valid while this hash is the one it was signed in with (Django checks it on
    # every request). Django's covers the password only; the sign-in address is in it too, so
    # that changing either ends every other session of the user (the caller keeps its own with
    # update_session_auth_hash). Deploying this once signs everybody out.
    def _session_hash(self, secret: str | None = None) -> str:
        return salted_hmac("prorata.accounts.User.session", f"{self.password}\0{self.email.lower()}",
                           secret=secret, algorithm="sha256").hexdigest()

    def get_session_auth_hash(self) -> str:
        return self._session_hash()

    def get_session_auth_fallback_hash(self) -> Iterator[str]:
        for secret in settings.SECRET_KEY_FALLBACKS:
            yield self._session_hash(secret)


class BillingMode(models.TextChoices):
    SELF_SERVICE = "self_service", _("Self-service (online)")
    CORPORATE = "corporate", _("Corporate (offline, with an advisor)")


class Account(models.Model):
    """A customer organisation.

    ``currency`` is empty until the first purchase fixes it; ``vat_number`` is stored normalised
    (``prorata_core.tax.normalize_vat_number``). Corporate accounts have an ``advisor`` (a staff user)
    and pay by bank transfer within ``payment_terms_days``.
    """

    name = models.CharField(_("name"), max_length=200)
    country = models.CharField(_("country"), max_length=2, help_text=_("ISO 3166 code, e.g. FR"))
    currency = models.CharField(_("currency"), max_length=3, blank=True, default="")
    billing_address = models.TextField(_("billing address"), blank=True, default="")
    vat_number = models.CharField(_("VAT number"), max_length=20, blank=True, default="")
    billing_mode = models.CharField(
        _("billing mode"), max_length=16, choices=BillingMode.choices,
        default=BillingMode.SELF_SERVICE,
    )
    advisor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("advisor"), null=True, blank=True,
        on_delete=models.PROTECT, related_name="advised_accounts",
        limit_choices_to={"is_staff": True},
    )
    payment_terms_days = models.PositiveSmallIntegerField(_("payment terms (days)"), default=30)
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="en"
    )
    #: The accounts department's address, printed in documents' buyer block ("" = none).
    billing_email = models.EmailField(_("billing e-mail"), blank=True, default="", db_default="")
    #: The IANA zone the account's dates are shown in ("" = UTC; sign-up sets the country's).
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True, default="",
                                 db_default="")
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(billing_mode="corporate") | models.Q(advisor__isnull=False),
                name="account_corporate_has_advisor",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_corporate(self) -> bool:
        return self.billing_mode == BillingMode.CORPORATE


class Membership(models.Model):
    """``user``'s roles in ``account``. A member with no role sees the account but no billing."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    is_billing_contact = models.BooleanField(_("billing contact"), default=False)
    is_admin = models.BooleanField(_("admin"), default=False)
    is_organizer = models.BooleanField(_("organizer"), default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "account"], name="membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.account}"

    @property
    def roles(self) -> list[str]:
        return [
            role
            for role, held in (
                ("billing_contact", self.is_billing_contact),
                ("admin", self.is_admin),
                ("organizer", self.is_organizer),
            )
            if held
        ]


class StaffRole(models.TextChoices):
    """Staff roles are Django groups of these names (created by a data migration)."""

    SUPPORT_AGENT = "support_agent", _("Support agent")
    CORPORATE_ADVISOR = "corporate_advisor", _("Corporate advisor")
    OPERATOR = "operator", _("Operator")


class AppendOnlyError(Exception):
    """An attempt to change or delete an audit entry."""


class AuditEntry(models.Model):
    """One money- or permission-relevant action: who, on whose behalf, what, before and after.

    Append-only: written once by ``audit_record``; updates and deletes are refused here and by
    database triggers (see the migration).
    """

    at = models.DateTimeField(_("at"), db_index=True)
    # DO_NOTHING without a database constraint: deleting a user must not rewrite history, and
    # ``actor_email`` keeps who it was.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING,
        related_name="+", db_constraint=False,
    )
    actor_email = models.CharField(_("actor"), max_length=254, blank=True, default="")
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+",
        db_constraint=False, verbose_name=_("on behalf of"),
    )
    action = models.CharField(_("action"), max_length=64, db_index=True)
    object_type = models.CharField(_("object type"), max_length=64, blank=True, default="")
    object_id = models.CharField(_("object id"), max_length=64, blank=True, default="")
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        indexes = [models.Index(fields=["account", "at", "id"], name="audit_account_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_email or '-'} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError("The audit log is append-only: entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("The audit log is append-only: entries cannot be deleted.")


class SignInFailure(models.Model):
    """One failed sign-in, counted by :mod:`prorata.accounts.throttle` per address from one IP and per IP.

    A working table, not history: a successful sign-in deletes its address's rows, and rows older
    than the throttling window are purged as new failures arrive. ``at`` is the project clock's.
    """

    email = models.CharField(max_length=254)
    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["email", "at"], name="signin_failure_email_at"),
            models.Index(fields=["ip", "at"], name="signin_failure_ip_at"),
            models.Index(fields=["at"], name="signin_failure_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.email} {self.ip or '-'}"


class EmailChangeRequest(models.Model):
    """A signed-in user's request to sign in with ``new_email`` instead of ``old_email``.

    The confirmation link sent to ``new_email`` carries the row's id and a random nonce, of which
    only the SHA-256 is kept here. The change happens when the link is confirmed, at most once, within
    24 hours of ``created_at`` (project clock), and only while the user's address is still
    ``old_email``. A newer request for the same user replaces the pending one.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="email_change_requests"
    )
    old_email = models.EmailField()
    new_email = models.EmailField()
    nonce_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "confirmed_at"], name="email_change_user_pending")]

    def __str__(self) -> str:
        return f"{self.old_email} → {self.new_email}"


class PasswordResetRequest(models.Model):
    """One submission of the password-reset page, whether the address is known or not
    (:mod:`prorata.accounts.resets`).

    The page only writes this row; the worker's mail job later looks the address up and queues the
    e-mail (``outcome`` ``sent``), or finds no active user (``unknown``) or too many recent e-mails to
    the address (``throttled``). A working table: handled rows older than the throttling window are
    purged by that job. ``at`` and ``handled_at`` are the project clock's.
    """

    email = models.CharField(max_length=254)
    ip = models.GenericIPAddressField(null=True, blank=True)
    language = models.CharField(max_length=8)
    at = models.DateTimeField()
    handled_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["ip", "at"], name="reset_request_ip_at"),
            models.Index(fields=["email", "at"], name="reset_request_email_at"),
            models.Index(fields=["handled_at"], name="reset_request_handled"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.email} {self.outcome or 'pending'}"
