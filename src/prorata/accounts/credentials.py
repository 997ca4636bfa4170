"""Services behind sign-in and the profile page (S1): password, e-mail address, language.

Each one writes in one transaction with its audit entry (``auth.password_change``,
``auth.password_reset``, ``auth.email_change``; ``auth.email_change_request`` once its link is sent)
and takes the time from the project clock. Refusals raise :mod:`prorata.accounts.errors` and change
nothing.

E-mails (the change link to the new address, the notice to the old one) are sent directly through
Django's e-mail framework after the transaction commits, in the user's language: they concern the
person at the keyboard, who waits for them, and are not part of a billing transaction.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext_noop

from prorata.accounts.errors import (
    EmailInvalid,
    EmailLinkExpired,
    EmailLinkInvalid,
    EmailLinkUsed,
    EmailNotSent,
    EmailTaken,
    EmailUnchanged,
    LanguageUnknown,
)
from prorata.accounts.models import EmailChangeRequest, User
from prorata.accounts.services import audit_record
from prorata.accounts.throttle import signin_failures_clear
from prorata.accounts.tokens import (
    EmailChangeLink,
    email_change_lifetime,
    email_change_link,
    email_change_token,
    new_nonce,
    nonce_hash,
)
from prorata.common.clock import format_instant, now

logger = logging.getLogger(__name__)


def user_mail_language(user: User) -> str:
    """The language of e-mails to ``user``: their own choice, else the one they are browsing in."""
    return user.language or translation.get_language() or settings.LANGUAGE_CODE


def account_mail_context(context: dict[str, Any], language: str) -> dict[str, Any]:
    """``context`` with what the e-mails' shared layout (``notifications/email/base.html``) names:
    the reader's language and the seller's name."""
    return {**context, "language": language, "seller_name": settings.PRORATA_SELLER_NAME}


def send_user_mail(*, to: str, template: str, context: dict[str, Any], language: str) -> None:
    """Send ``accounts/email/<template>_subject.txt``, with ``..._body.txt`` as its text and
    ``..._body.html`` (the billing e-mails' layout) as its HTML part, in ``language``."""
    context = account_mail_context(context, language)
    with translation.override(language):
        subject = "".join(render_to_string(f"accounts/email/{template}_subject.txt", context).splitlines())
        body = render_to_string(f"accounts/email/{template}_body.txt", context)
        html = render_to_string(f"accounts/email/{template}_body.html", context)
    message = EmailMultiAlternatives(subject.strip(), body, settings.DEFAULT_FROM_EMAIL, [to])
    message.attach_alternative(html, "text/html")
    message.send()


def signin_succeeded(*, user: User) -> None:
    """After a successful sign-in: forget the address's failures; record the sign-in instant by
    the project clock (Django's own ``last_login`` update reads the wall clock)."""
    signin_failures_clear(email=user.email)
    user.last_login = now()
    User.objects.filter(pk=user.pk).update(last_login=user.last_login)


def password_change(*, user: User, new_password: str, ip: str | None) -> None:
    """Set ``user``'s password (already validated by the form, with the current one checked).

    Every session of the user stops being valid (Django ties sessions to the password hash); the
    caller keeps its own with ``update_session_auth_hash``.
    """
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        audit_record(actor=user, action="auth.password_change", obj=user, ip=ip)


def password_reset_complete(*, user: User, new_password: str, ip: str | None) -> None:
    """Set the password chosen through a reset link; the address's sign-in lockout ends too."""
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        signin_failures_clear(email=user.email)
        audit_record(actor=user, action="auth.password_reset", obj=user, ip=ip)


def _normalize_new_email(user: User, new_email: str) -> str:
    address = (new_email or "").strip().lower()
    try:
        validate_email(address)
    except DjangoValidationError:
        raise EmailInvalid(gettext_noop("Enter a valid e-mail address."), email=address) from None
    if address == user.email.lower():
        raise EmailUnchanged(
            gettext_noop("This is already your e-mail address."), email=address
        )
    if User.objects.filter(email__iexact=address).exclude(pk=user.pk).exists():
        raise EmailTaken(gettext_noop("This address is already used by another account."))
    return address


def email_change_request(
    *, user: User, new_email: str, link_for: Callable[[str], str], ip: str | None
) -> EmailChangeRequest:
    """Ask to sign in with ``new_email``: e-mail a one-time confirmation link to that address.

    ``link_for(token)`` makes the absolute URL of the link. Nothing changes until the link is
    confirmed (:func:`email_change_confirm`); a pending earlier request of the user is replaced.
    If the e-mail cannot be sent, the request is withdrawn and EmailNotSent raised.
    """
    address = _normalize_new_email(user, new_email)
    nonce = new_nonce()
    with transaction.atomic():
        at = now()
        EmailChangeRequest.objects.filter(user=user, confirmed_at__isnull=True).delete()
        request = EmailChangeRequest.objects.create(
            user=user, old_email=user.email, new_email=address, nonce_hash=nonce_hash(nonce),
            created_at=at,
        )
    token = email_change_token(EmailChangeLink(request.pk, int(at.timestamp()), nonce))
    expires = at + email_change_lifetime()
    try:
        send_user_mail(
            to=address, template="email_change_confirm", language=user_mail_language(user),
            context={"user": user, "new_email": address, "link": link_for(token),
                     "expires_at": expires, "expires_text": format_instant(expires)},
        )
    except Exception:  # SMTP errors are many and varied; the request must not linger unusable
        logger.exception("Could not send the e-mail change link to user %s", user.pk)
        EmailChangeRequest.objects.filter(pk=request.pk).delete()
        raise EmailNotSent(
            gettext_noop("The confirmation e-mail could not be sent. Please try again later.")
        ) from None
    audit_record(actor=user, action="auth.email_change_request", obj=user, ip=ip,
                 before={"email": user.email}, after={"email": address})
    return request


def email_change_pending(user: User) -> EmailChangeRequest | None:
    """``user``'s unconfirmed, unexpired e-mail change request, if any."""
    return (
        EmailChangeRequest.objects.filter(
            user=user, confirmed_at__isnull=True, created_at__gt=now() - email_change_lifetime()
        )
        .order_by("-created_at", "-id")
        .first()
    )


def _request_for(token: str, *, lock: bool) -> EmailChangeRequest:
    link = email_change_link(token)
    rows = EmailChangeRequest.objects.select_related("user")
    if lock:
        rows = rows.select_for_update()
    request = rows.filter(pk=link.request_id).first() if link is not None else None
    if (
        link is None
        or request is None
        or not hmac.compare_digest(request.nonce_hash, nonce_hash(link.nonce))
        or int(request.created_at.timestamp()) != link.issued_at
    ):
        raise EmailLinkInvalid(
            gettext_noop("This link is not valid. Request a new e-mail change from your profile.")
        )
    if request.confirmed_at is not None:
        raise EmailLinkUsed(gettext_noop("This link has already been used."))
    if now() >= request.created_at + email_change_lifetime():
        raise EmailLinkExpired(
            gettext_noop("This link has expired. Request a new e-mail change from your profile.")
        )
    if request.user.email.lower() != request.old_email.lower():
        raise EmailLinkInvalid(
            gettext_noop("This link is not valid. Request a new e-mail change from your profile.")
        )
    return request


def email_change_check(*, token: str) -> EmailChangeRequest:
    """The request a link stands for, if the link would work now (read-only)."""
    return _request_for(token, lock=False)


def email_change_confirm(*, token: str, ip: str | None) -> User:
    """Make the link's new address the user's sign-in address, once; tell the old address."""
    with transaction.atomic():
        request = _request_for(token, lock=True)
        user = User.objects.select_for_update().get(pk=request.user_id)
        old_email = user.email
        if User.objects.filter(email__iexact=request.new_email).exclude(pk=user.pk).exists():
            raise EmailTaken(gettext_noop("This address is already used by another account."))
        user.email = request.new_email
        try:
            with transaction.atomic():
                user.save(update_fields=["email"])
        except IntegrityError:  # taken between the check and the write
            raise EmailTaken(
                gettext_noop("This address is already used by another account.")
            ) from None
        request.confirmed_at = now()
        request.save(update_fields=["confirmed_at"])
        audit_record(actor=user, action="auth.email_change", obj=user, ip=ip,
                     before={"email": old_email}, after={"email": user.email})
    try:
        send_user_mail(
            to=old_email, template="email_changed_notice", language=user_mail_language(user),
            context={"user": user, "old_email": old_email, "new_email": user.email},
        )
    except Exception:  # the change is made; a lost notice must not undo it or show an error
        logger.exception("Could not tell the old address of user %s about its change", user.pk)
    return user


def user_language_set(*, user: User, language: str) -> None:
    """Save ``user``'s preferred language: a code of ``settings.LANGUAGES``, or "" for the browser's."""
    if language and language not in dict(settings.LANGUAGES):
        raise LanguageUnknown(gettext_noop("Choose one of the languages offered."), language=language)
    if user.language != language:
        user.language = language
        user.save(update_fields=["language"])
