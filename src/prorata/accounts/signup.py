"""Sign-up (S16): a visitor opens an account and confirms their e-mail address by a link.

:func:`signup_create` writes, in one transaction, the customer account (company name, country, the
currency its country buys in), the person (inactive: they cannot sign in yet) and their membership
with every customer role, audited as ``account.signup``; the account's time zone is its
country's (:func:`prorata.accounts.countries.default_time_zone`); the confirmation link is e-mailed as the
transaction's last step, so an e-mail that cannot be sent leaves nothing behind.
:func:`signup_confirm` activates the person once, from the link; the link expires after
``PASSWORD_RESET_TIMEOUT`` of project time and stops working once used (its hash covers
``is_active``).

The plan the visitor chose travels in the link's query string, not here: what to do next (start a
trial, open the order summary) is the web layer's step after confirmation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django.utils.translation import gettext_noop

from prorata.accounts.countries import country_choices
from prorata.accounts.credentials import send_user_mail
from prorata.accounts.errors import (
    EmailLinkInvalid,
    EmailNotSent,
    EmailTaken,
    SignUpInvalid,
)
from prorata.accounts.models import Account, Membership, User
from prorata.accounts.services import account_create, audit_record
from prorata.accounts.tokens import ClockPasswordResetTokenGenerator, email_change_lifetime
from prorata.common.cardnumbers import mask_card_numbers
from prorata.common.clock import format_instant, now
from prorata_core.tax import EU_COUNTRIES


class SignUpTokenGenerator(ClockPasswordResetTokenGenerator):
    """One-time sign-up links, timed by the project clock; void once the person is active."""

    key_salt = "prorata.accounts.signup"

    def _make_hash_value(self, user: User, timestamp: int) -> str:  # type: ignore[override]
        return f"{user.pk}{user.password}{user.is_active}{timestamp}{user.email}"


signup_tokens = SignUpTokenGenerator()


def currency_for_country(country: str) -> str:
    """The currency a new account buys in: EUR in the EU, USD elsewhere (the catalog's two)."""
    return "EUR" if country.upper() in EU_COUNTRIES else "USD"


def signup_create(
    *, company: str, country: str, email: str, password: str, language: str,
    link_for: Callable[[User, str], str], ip: str | None = None,
) -> User:
    """Open an account for ``company`` and an inactive person ``email`` who is its billing contact,
    admin and organizer; e-mail them ``link_for(user, token)`` to confirm the address.

    ``password`` is already validated by the form. Raises :class:`EmailTaken` for an address in
    use, :class:`SignUpInvalid` for a missing company or an unknown country, :class:`EmailNotSent`
    when the e-mail fails (then nothing is kept).
    """
    company = mask_card_numbers(" ".join(company.split()))
    country = country.strip().upper()
    address = email.strip().lower()
    if not company:
        raise SignUpInvalid(gettext_noop("Enter your company's name."), field="company")
    if country not in dict(country_choices("en")):
        raise SignUpInvalid(gettext_noop("Choose your country from the list."), field="country")
    if User.objects.filter(email__iexact=address).exists():
        raise EmailTaken(gettext_noop(
            "This address already has an account: sign in, or reset your password."))
    try:
        with transaction.atomic():
            user = User.objects.create_user(address, password, is_active=False, language=language)
            account = account_create(name=company, country=country, actor=None,
                                     currency=currency_for_country(country), language=language)
            Membership.objects.create(user=user, account=account, is_billing_contact=True,
                                      is_admin=True, is_organizer=True)
            audit_record(actor=user, action="account.signup", account=account, obj=account,
                         after={"email": address, "company": company, "country": country,
                                "currency": account.currency}, ip=ip)
            expires = now() + email_change_lifetime()
            try:
                send_user_mail(
                    to=address, template="signup_confirm", language=language,
                    context={"company": company, "link": link_for(user,
                                                                  signup_tokens.make_token(user)),
                             "expires_text": format_instant(expires)},
                )
            except Exception as error:  # SMTP errors are many; roll the sign-up back
                raise EmailNotSent(gettext_noop(
                    "The confirmation e-mail could not be sent. Please try again later."
                )) from error
    except IntegrityError:  # the same address signed up between the check and the write
        raise EmailTaken(gettext_noop(
            "This address already has an account: sign in, or reset your password.")) from None
    return user


def signup_uid(user: User) -> str:
    return urlsafe_base64_encode(force_bytes(user.pk))


def _user_for(uidb64: str, token: str, *, lock: bool) -> User:
    try:
        pk = int(force_str(urlsafe_base64_decode(uidb64)))
    except (TypeError, ValueError, OverflowError):
        pk = None
    rows = User.objects.select_for_update() if lock else User.objects
    user = rows.filter(pk=pk, is_active=False, last_login__isnull=True).first() if pk else None
    if user is None or not signup_tokens.check_token(user, token):
        raise EmailLinkInvalid(gettext_noop(
            "This confirmation link is not valid: it was used already, or it expired. Sign in, "
            "or sign up again."))
    return user


def signup_check(*, uidb64: str, token: str) -> User:
    """The person a confirmation link stands for, if it would work now (read-only)."""
    return _user_for(uidb64, token, lock=False)


def signup_confirm(*, uidb64: str, token: str, ip: str | None = None) -> tuple[User, Account]:
    """Activate the link's person (once) and return them with the account they opened."""
    with transaction.atomic():
        user = _user_for(uidb64, token, lock=True)
        at: datetime = now()
        user.is_active = True
        user.last_login = at
        user.save(update_fields=["is_active", "last_login"])
        account = Account.objects.get(memberships__user=user)
        audit_record(actor=user, action="auth.signup_confirm", account=account, obj=user, ip=ip)
    return user, account
