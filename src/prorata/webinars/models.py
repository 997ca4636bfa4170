"""Webinars and their registrations (DESIGN §4, seed S5): the small real model of what the
webinar product hosts, so that licenses, limits and S5 can be tried end to end.

A webinar is upcoming on ``[scheduled_at, starts_at)`` and runs ``[starts_at, starts_at +
duration)``; instants are UTC, ``time_zone`` (an IANA name) is the organizer's, in which pages show
it. ``limit_when_scheduled`` is the account's plan limit when it was scheduled (raised to the limit
in force when the organizer edits it); its limit at any instant is
:func:`prorata_core.webinars.participant_limit` of that and the account's plan history, so that no
subscription change ever lowers it. Written only by :mod:`prorata.webinars.services`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from prorata.accounts.models import Account


class Webinar(models.Model):
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="webinars",
                                verbose_name=_("account"))
    # PROTECT: a member who leaves the account keeps their scheduled webinars (S5).
    organizer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                  related_name="+", verbose_name=_("organizer"))
    #: The public registration page's address: random, so that webinars cannot be enumerated.
    public_id = models.CharField(max_length=16, unique=True)
    title = models.CharField(_("title"), max_length=200)
    starts_at = models.DateTimeField(_("starts at"))
    duration_minutes = models.PositiveIntegerField(_("duration (minutes)"))
    time_zone = models.CharField(_("time zone"), max_length=64)
    limit_when_scheduled = models.PositiveIntegerField(_("participant limit when scheduled"))
    scheduled_at = models.DateTimeField(_("scheduled at"))
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webinar")
        verbose_name_plural = _("webinars")
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(duration_minutes__gte=1),
                                   name="webinar_duration_positive"),
        ]
        indexes = [models.Index(fields=["account", "starts_at"], name="webinar_account_start")]

    def __str__(self) -> str:
        return f"{self.title} ({self.starts_at:%Y-%m-%d %H:%M} UTC)"

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.duration_minutes)


class Registration(models.Model):
    """A visitor registered for a webinar (one per e-mail address, case-insensitive)."""

    webinar = models.ForeignKey(Webinar, on_delete=models.CASCADE, related_name="registrations")
    name = models.CharField(_("name"), max_length=200)
    email = models.EmailField(_("e-mail address"))
    created_at = models.DateTimeField(_("registered at"))

    class Meta:
        ordering = ["webinar", "created_at", "id"]
        constraints = [
            models.UniqueConstraint("webinar", Lower("email"), name="registration_one_per_email"),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.webinar_id}"
