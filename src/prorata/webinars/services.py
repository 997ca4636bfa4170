"""Services that write webinars and registrations (DESIGN §4, S5).

- :func:`webinar_schedule`: a licensed organizer of an account whose subscription is active (or
  a free trial) schedules a webinar; its limit when scheduled is the plan's limit then.
- :func:`webinar_update` / :func:`webinar_cancel`: its organizer edits or cancels it before it
  starts (losing one's license does not take one's webinars away: S5). Admins and billing contacts
  may cancel too. Editing raises ``limit_when_scheduled`` to the limit in force, never lowers it.
- :func:`registration_create`: a visitor registers (name, e-mail) for an upcoming webinar, under
  the webinar's row lock so that two visitors never take the last place together.

Nothing here is called by subscription changes: the S5 rule lives in how limits are read
(:func:`prorata.webinars.selectors.webinar_limit`), so no change anywhere can shrink a webinar.
Instants come from the project clock; every write is audited, registrations e-mailed.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse

from prorata.accounts.models import Account, User
from prorata.accounts.permissions import Action, can
from prorata.accounts.services import audit_record
from prorata.billing.locks import lock_account
from prorata.common.cardnumbers import mask_card_numbers
from prorata.common.clock import format_instant, now
from prorata.notifications.outbox import outbox_enqueue
from prorata.webinars.errors import (
    AlreadyRegistered,
    HostingRefused,
    RegistrationClosed,
    WebinarFull,
    WebinarNotEditable,
    WebinarNotFound,
)
from prorata.webinars.models import Registration, Webinar
from prorata.webinars.selectors import (
    current_plan_limit,
    hosting_refusal,
    webinar_limit,
)
from prorata_core.errors import ValidationError

MIN_DURATION, MAX_DURATION = 5, 24 * 60  # minutes
TITLE_MAX = 200


def valid_time_zone(name: str) -> str:
    """``name`` if it is an IANA time zone (``Europe/Paris``), else a ValidationError."""
    name = (name or "").strip()
    try:
        if name not in available_timezones():
            raise ZoneInfoNotFoundError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{name!r} is not a time zone: choose one from the list, such as "
                              "Europe/Paris.", field="time_zone") from None
    return name


def _checked(title: str, starts_at: datetime, duration_minutes: int, time_zone: str,
             at: datetime) -> tuple[str, int, str]:
    title = (title or "").strip()
    if not title or len(title) > TITLE_MAX:
        raise ValidationError(f"Give the webinar a title of 1 to {TITLE_MAX} characters.",
                              field="title", max_length=TITLE_MAX)
    if starts_at.tzinfo is None:
        raise ValidationError("The start needs a time zone.", field="starts_at")
    if starts_at <= at:
        raise ValidationError("The start must be in the future: choose a later date or time.",
                              field="starts_at")
    if not MIN_DURATION <= duration_minutes <= MAX_DURATION:
        raise ValidationError(
            f"A webinar lasts between {MIN_DURATION} and {MAX_DURATION} minutes.",
            field="duration_minutes", min=MIN_DURATION, max=MAX_DURATION)
    return mask_card_numbers(title), duration_minutes, valid_time_zone(time_zone)


def webinar_schedule(*, organizer: User, account: Account, title: str, starts_at: datetime,
                     duration_minutes: int, time_zone: str) -> Webinar:
    """Schedule a webinar. Refused with HostingRefused (``params.reason``: no_license,
    no_subscription, expired, past_due) or a ValidationError naming the bad field."""
    at = now()
    title, duration_minutes, time_zone = _checked(title, starts_at, duration_minutes, time_zone,
                                                  at)
    with transaction.atomic():
        lock_account(account.pk)
        reason = hosting_refusal(user=organizer, account=account)
        if reason is not None:
            raise HostingRefused(f"You may not schedule a webinar now ({reason}).", reason=reason)
        webinar = Webinar.objects.create(
            account=account, organizer=organizer, public_id=secrets.token_urlsafe(9),
            title=title, starts_at=starts_at, duration_minutes=duration_minutes,
            time_zone=time_zone, limit_when_scheduled=current_plan_limit(account),
            scheduled_at=at)
        audit_record(actor=organizer, action="webinar.schedule", account=account, obj=webinar,
                     after={"title": title, "starts_at": format_instant(starts_at),
                            "limit": webinar.limit_when_scheduled})
    return webinar


def _own_webinar(*, user: User, account: Account, webinar_id: int | str,
                 cancel: bool = False) -> Webinar:
    try:
        wanted = int(webinar_id)
    except (TypeError, ValueError):
        raise WebinarNotFound("No such webinar.") from None
    webinar = Webinar.objects.select_for_update().filter(account=account, pk=wanted).first()
    if webinar is None:
        raise WebinarNotFound("No such webinar.")
    if webinar.organizer_id != user.pk and not (
            cancel and can(user, Action.MANAGE_LICENSES, account)):
        raise WebinarNotFound("No such webinar.")
    if webinar.cancelled_at is not None or webinar.starts_at <= now():
        raise WebinarNotEditable("This webinar has started or been cancelled.")
    return webinar


def webinar_update(*, user: User, account: Account, webinar_id: int | str, title: str,
                   starts_at: datetime, duration_minutes: int, time_zone: str) -> Webinar:
    """Change one's upcoming webinar. Its limit when scheduled becomes the limit in force now
    (which is never lower), so that moving it cannot lose an upgrade's raise."""
    at = now()
    title, duration_minutes, time_zone = _checked(title, starts_at, duration_minutes, time_zone,
                                                  at)
    with transaction.atomic():
        lock_account(account.pk)
        webinar = _own_webinar(user=user, account=account, webinar_id=webinar_id)
        before = {"title": webinar.title, "starts_at": format_instant(webinar.starts_at),
                  "duration_minutes": webinar.duration_minutes, "time_zone": webinar.time_zone}
        webinar.limit_when_scheduled = webinar_limit(webinar, at)
        webinar.title, webinar.starts_at = title, starts_at
        webinar.duration_minutes, webinar.time_zone = duration_minutes, time_zone
        webinar.save()
        audit_record(actor=user, action="webinar.update", account=account, obj=webinar,
                     before=before,
                     after={"title": title, "starts_at": format_instant(starts_at),
                            "duration_minutes": duration_minutes, "time_zone": time_zone})
    return webinar


def webinar_cancel(*, user: User, account: Account, webinar_id: int | str) -> Webinar:
    """Cancel an upcoming webinar (its organizer, or an admin / billing contact)."""
    with transaction.atomic():
        lock_account(account.pk)
        webinar = _own_webinar(user=user, account=account, webinar_id=webinar_id, cancel=True)
        webinar.cancelled_at = now()
        webinar.save(update_fields=["cancelled_at"])
        audit_record(actor=user, action="webinar.cancel", account=account, obj=webinar,
                     before={"title": webinar.title,
                             "starts_at": format_instant(webinar.starts_at)})
    return webinar


def registration_create(*, public_id: str, name: str, email: str,
                        language: str = "en") -> Registration:
    """Register a visitor for the webinar ``public_id``; the confirmation e-mail goes out in
    ``language``. Refused with a ValidationError (name, e-mail), WebinarNotFound,
    RegistrationClosed (started, over or cancelled), AlreadyRegistered (the same address,
    case-insensitive) or WebinarFull (its limit reached: ``params.limit``)."""
    name, email = (name or "").strip(), (email or "").strip()
    if not name or len(name) > 200:
        raise ValidationError("Enter your name (at most 200 characters).", field="name")
    name = mask_card_numbers(name)
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ValidationError(f"{email!r} is not an e-mail address: check it.",
                              field="email") from None
    with transaction.atomic():
        webinar = (Webinar.objects.select_for_update().select_related("account")
                   .filter(public_id=public_id).first())
        if webinar is None:
            raise WebinarNotFound("No such webinar.")
        at = now()
        if webinar.cancelled_at is not None or webinar.starts_at <= at:
            raise RegistrationClosed("Registrations for this webinar are closed.")
        if Registration.objects.filter(webinar=webinar, email__iexact=email).exists():
            raise AlreadyRegistered(f"{email} is already registered for this webinar.",
                                    email=email)
        limit = webinar_limit(webinar, at)
        if Registration.objects.filter(webinar=webinar).count() >= limit:
            raise WebinarFull(f"This webinar is full ({limit} participants).", limit=limit)
        try:
            with transaction.atomic():
                registration = Registration.objects.create(webinar=webinar, name=name,
                                                           email=email, created_at=at)
        except IntegrityError:
            raise AlreadyRegistered(f"{email} is already registered for this webinar.",
                                    email=email) from None
        outbox_enqueue(
            to=email, template="webinar_registration",
            context={"title": webinar.title, "start": format_instant(webinar.starts_at),
                     "time_zone": webinar.time_zone,
                     "duration_minutes": webinar.duration_minutes, "name": name,
                     "url": reverse("webinars:register", args=[webinar.public_id])},
            language=language if language in ("en", "fr") else "en",
            dedupe_key=f"webinar:registration:{registration.pk}",
        )
    return registration


def default_time_zone(account: Account) -> str:
    """A first guess for the organizer's zone: the account's (its billing details' choice, else
    its country's main zone)."""
    from prorata.accounts.billing_details import account_time_zone

    return account_time_zone(account)



