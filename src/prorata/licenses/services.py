"""Services that write license assignments, memberships and invitations (DESIGN §4, §5).

Every write takes the account lock first, then the subscription's (:mod:`prorata.billing.locks`,
always that order), so that two admins assigning the last free license at once are serialised:
one assignment, one :class:`~prorata.licenses.errors.NoFreeLicense`. Each action is audited and
its e-mails are queued in the same transaction. Instants come from the project clock, read once
per call. Callers are the edges (pages), after ``account_for`` with ``MANAGE_LICENSES`` or
``MANAGE_MEMBERS``; the services trust that check and check everything else.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.urls import reverse

from prorata.accounts.models import Account, Membership, User
from prorata.accounts.services import audit_record
from prorata.billing.locks import lock_account, lock_subscriptions
from prorata.common.cardnumbers import mask_card_numbers
from prorata.common.clock import format_instant, now
from prorata.licenses.errors import (
    AlreadyLicensed,
    AlreadyMember,
    InvitationForAnotherAddress,
    InvitationUnusable,
    LastBillingContact,
    LicensesToFree,
    NoFreeLicense,
    NoSubscription,
    NotAMember,
    NotLicensed,
)
from prorata.licenses.models import Invitation, LicenseAssignment, LicenseRelease
from prorata.notifications.outbox import outbox_enqueue
from prorata.subscriptions.models import Subscription
from prorata.webhooks.events import WebhookBatch
from prorata.webhooks.payloads import entitlement_object, license_object
from prorata_core.errors import ValidationError

#: How long an invitation link can be used, from when it is sent (project clock).
INVITATION_VALIDITY = timedelta(days=7)


def _hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode("ascii")).hexdigest()


def _language(user: User, account: Account) -> str:
    return user.language or account.language or "en"


def _member(account: Account, member_id: int | str) -> Membership:
    try:
        wanted = int(member_id)
    except (TypeError, ValueError):
        raise NotAMember("This person is not a member of the account.") from None
    member = (Membership.objects.select_for_update(of=("self",)).select_related("user")
              .filter(account=account, pk=wanted).first())
    if member is None:
        raise NotAMember("This person is not a member of the account.")
    return member


def _subscription(account: Account, subscription_id: int | str) -> Subscription:
    """Lock the account, then its subscription ``subscription_id`` (404-like if not its own)."""
    lock_account(account.pk)
    try:
        wanted = int(subscription_id)
    except (TypeError, ValueError):
        raise NoSubscription("This account has no such subscription.") from None
    found = lock_subscriptions(account_id=account.pk, ids=[wanted])
    if not found:
        raise NoSubscription("This account has no such subscription.")
    return found[0]


def _licenses_url(account: Account) -> str:
    return reverse("licenses:licenses", args=[account.pk])


def _notify_license(member: Membership, subscription: Subscription, *, gained: bool,
                    key: str) -> None:
    user, account = member.user, member.account
    outbox_enqueue(
        to=user.email, template="license_assigned" if gained else "license_unassigned",
        context={"account": account.name, "product": subscription.product.name,
                 "name": user.get_full_name(), "url": reverse("webinars:list", args=[account.pk])},
        language=_language(user, account), dedupe_key=key,
    )


def _grant_organizer(*, actor: User | None, member: Membership, ip: str | None) -> None:
    """A license holder hosts webinars: make them an organizer (audited) if they were not."""
    if member.is_organizer:
        return
    before = member.roles
    member.is_organizer = True
    member.save(update_fields=["is_organizer"])
    audit_record(actor=actor, action="membership.roles", account=member.account, obj=member,
                 before={"roles": before}, after={"user": member.user.email, "roles": member.roles},
                 ip=ip)


def _assign(*, actor: User | None, subscription: Subscription, member: Membership,
            ip: str | None) -> LicenseAssignment:
    """Give ``member`` a license of ``subscription`` (both locked by the caller)."""
    if LicenseAssignment.objects.filter(subscription=subscription, member=member).exists():
        raise AlreadyLicensed("This member already holds a license.")
    used = LicenseAssignment.objects.filter(subscription=subscription).count()
    if used >= subscription.quantity:
        raise NoFreeLicense(
            f"All {subscription.quantity} licenses are assigned. Unassign one first, or add "
            "licenses to your subscription.", bought=subscription.quantity, used=used,
        )
    at = now()
    assignment = LicenseAssignment.objects.create(
        subscription=subscription, member=member, assigned_at=at,
        assigned_by=actor if actor is not None and actor.pk else None,
    )
    _grant_organizer(actor=actor, member=member, ip=ip)
    audit_record(actor=actor, action="license.assign", account=member.account, obj=assignment,
                 after={"user": member.user.email, "subscription": subscription.pk,
                        "used": used + 1, "bought": subscription.quantity}, ip=ip)
    _notify_license(member, subscription, gained=True,
                    key=f"license:assign:{assignment.pk}")
    license_webhooks(assignment_id=assignment.pk, subscription=subscription, member=member,
                     assigned_at=at, gained=True, reason="license_assigned")
    return assignment


def _unassign(*, actor: User | None, assignment: LicenseAssignment, reason: str,
              ip: str | None) -> None:
    member, subscription = assignment.member, assignment.subscription
    audit_record(actor=actor, action="license.unassign", account=member.account, obj=assignment,
                 before={"user": member.user.email, "subscription": subscription.pk,
                         "assigned_at": format_instant(assignment.assigned_at)},
                 after={"reason": reason}, ip=ip)
    _notify_license(member, subscription, gained=False,
                    key=f"license:unassign:{assignment.pk}")
    license_webhooks(assignment_id=assignment.pk, subscription=subscription, member=member,
                     assigned_at=assignment.assigned_at, gained=False, reason=reason)
    assignment.delete()


def license_webhooks(*, assignment_id: int, subscription: Subscription, member: Membership,
                     assigned_at: datetime | None, gained: bool, reason: str) -> None:
    """The webhook events of a license given or taken back: ``license.assigned`` or
    ``license.unassigned``, and ``entitlement.changed`` (the member may now use the product, or
    no longer; ``reason`` says why: ``license_assigned``, ``unassigned``, ``member_removed``, or
    the reason an order freed it). In the caller's transaction; every road that changes an
    assignment calls it."""
    batch = WebhookBatch()
    kind = "license.assigned" if gained else "license.unassigned"
    at = now()
    batch.add(kind, key=f"{kind}:{assignment_id}", at=at, data=lambda: license_object(
        assignment_id=assignment_id, account_id=member.account_id, subscription=subscription,
        member=member, assigned_at=assigned_at))
    batch.add("entitlement.changed", key=f"entitlement.changed:{kind}:{assignment_id}", at=at,
              data=lambda: entitlement_object(account_id=member.account_id,
                                              subscription=subscription, member=member,
                                              entitled=gained, reason=reason))
    batch.save()


def license_assign(*, actor: User | None, account: Account, subscription_id: int | str,
                   member_id: int | str, ip: str | None = None) -> LicenseAssignment:
    """Give a free license of the account's subscription to one of its members.

    Refused (nothing written) with NoSubscription, NotAMember, AlreadyLicensed, or NoFreeLicense
    when every license of the pool is assigned (``params``: ``bought``, ``used``).
    """
    with transaction.atomic():
        subscription = _subscription(account, subscription_id)
        member = _member(account, member_id)
        try:
            with transaction.atomic():
                return _assign(actor=actor, subscription=subscription, member=member, ip=ip)
        except IntegrityError:  # the same member assigned concurrently: the constraint decided
            raise AlreadyLicensed("This member already holds a license.") from None


def license_unassign(*, actor: User | None, account: Account, subscription_id: int | str,
                     member_id: int | str, ip: str | None = None) -> None:
    """Take back the license ``member_id`` holds of the subscription (their scheduled webinars
    stay scheduled, S5). Refused with NotLicensed when they hold none."""
    with transaction.atomic():
        subscription = _subscription(account, subscription_id)
        member = _member(account, member_id)
        assignment = (LicenseAssignment.objects.select_related("member__user", "member__account",
                                                              "subscription__product")
                      .filter(subscription=subscription, member=member).first())
        if assignment is None:
            raise NotLicensed("This member holds no license.")
        _unassign(actor=actor, assignment=assignment, reason="unassigned", ip=ip)


def licenses_free(*, actor: User | None, subscription: Subscription,
                  member_ids: Iterable[int], reason: str) -> int:
    """Unassign the licenses the members ``member_ids`` hold of ``subscription``, in the caller's
    transaction (which holds the account and subscription locks): an order that leaves fewer
    licenses than assigned calls it with the members its buyer chose. Returns how many."""
    assignments = list(LicenseAssignment.objects
                       .select_related("member__user", "member__account", "subscription__product")
                       .filter(subscription=subscription, member_id__in=list(member_ids))
                       .order_by("id"))
    for assignment in assignments:
        _unassign(actor=actor, assignment=assignment, reason=reason, ip=None)
    return len(assignments)


# --- members -------------------------------------------------------------------------------------


def member_set_roles(*, actor: User | None, account: Account, member_id: int | str,
                     billing_contact: bool, admin: bool, organizer: bool,
                     ip: str | None = None) -> Membership:
    """Give a member exactly these roles (audited ``membership.roles``). The account's last
    billing contact cannot lose the role (LastBillingContact), so someone can always pay."""
    with transaction.atomic():
        lock_account(account.pk)
        member = _member(account, member_id)
        wanted = (billing_contact, admin, organizer)
        if (member.is_billing_contact, member.is_admin, member.is_organizer) == wanted:
            return member
        if member.is_billing_contact and not billing_contact:
            _keep_a_billing_contact(account, member)
        before = member.roles
        member.is_billing_contact, member.is_admin, member.is_organizer = wanted
        member.save(update_fields=["is_billing_contact", "is_admin", "is_organizer"])
        audit_record(actor=actor, action="membership.roles", account=account, obj=member,
                     before={"roles": before},
                     after={"user": member.user.email, "roles": member.roles}, ip=ip)
    return member


def _keep_a_billing_contact(account: Account, leaving: Membership) -> None:
    others = Membership.objects.filter(account=account, is_billing_contact=True).exclude(
        pk=leaving.pk)
    if not others.exists():
        raise LastBillingContact(
            "This is the account's last billing contact: make another member billing contact "
            "first.")


def member_remove(*, actor: User | None, account: Account, member_id: int | str,
                  ip: str | None = None) -> None:
    """Remove a member from the account; the licenses they hold are freed (audited, e-mailed).
    Their webinars stay scheduled (S5). The last billing contact cannot be removed."""
    with transaction.atomic():
        lock_account(account.pk)
        member = _member(account, member_id)
        if member.is_billing_contact:
            _keep_a_billing_contact(account, member)
        held = list(LicenseAssignment.objects
                    .select_related("member__user", "member__account", "subscription__product")
                    .filter(member=member).order_by("subscription_id"))
        if held:
            lock_subscriptions(account_id=account.pk, ids=[a.subscription_id for a in held])
        for assignment in held:
            _unassign(actor=actor, assignment=assignment, reason="member_removed", ip=ip)
        audit_record(actor=actor, action="membership.remove", account=account, obj=member,
                     before={"user": member.user.email, "roles": member.roles}, ip=ip)
        member.delete()


# --- invitations -----------------------------------------------------------------------------------


def member_invite(*, actor: User, account: Account, email: str, admin: bool = False,
                  billing_contact: bool = False, with_license: bool = False,
                  ip: str | None = None, inviter: str = "") -> tuple[Invitation, str]:
    """Invite ``email`` to join the account as an organizer; returns the invitation and its
    one-use link path (also e-mailed, never stored: only its nonce's SHA-256 is kept).

    A newer invitation of the same address replaces the pending one. Refused with a
    ValidationError for a malformed address, AlreadyMember for a member's address, and, with
    ``with_license``, NoFreeLicense when no license is free now (checked again on acceptance).
    ``inviter`` is who the e-mail says invites (default: the actor's name or address; the
    operator API names the seller, not its key).
    """
    from django.core.exceptions import ValidationError as DjangoValidationError
    from django.core.validators import validate_email

    email = email.strip().lower()
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ValidationError(f"{email!r} is not an e-mail address: check it and try again.",
                              field="email") from None
    nonce = secrets.token_urlsafe(32)
    with transaction.atomic():
        lock_account(account.pk)
        if Membership.objects.filter(account=account, user__email__iexact=email).exists():
            raise AlreadyMember(f"{email} is already a member of this account.", email=email)
        if with_license:
            _require_free_license(account)
        at = now()
        Invitation.objects.filter(account=account, email=email, accepted_at__isnull=True,
                                  revoked_at__isnull=True).update(revoked_at=at)
        invitation = Invitation.objects.create(
            account=account, email=email, is_admin=admin, is_billing_contact=billing_contact,
            with_license=with_license, nonce_hash=_hash(nonce), invited_by=actor,
            created_at=at, expires_at=at + INVITATION_VALIDITY,
        )
        link = reverse("licenses:invitation", args=[f"{invitation.pk}.{nonce}"])
        audit_record(actor=actor, action="member.invite", account=account, obj=invitation,
                     after={"email": email, "admin": admin, "billing_contact": billing_contact,
                            "with_license": with_license,
                            "expires_at": format_instant(invitation.expires_at)}, ip=ip)
        outbox_enqueue(
            to=email, template="member_invitation",
            context={"account": account.name, "url": link,
                     "expires_at": format_instant(invitation.expires_at),
                     "inviter": inviter or actor.get_full_name() or actor.email,
                     "with_license": with_license},
            language=account.language or "en", dedupe_key=f"invitation:{invitation.pk}",
        )
    return invitation, link


def _webinar_subscription(account: Account) -> Subscription | None:
    from prorata.licenses.selectors import WEBINAR_PRODUCT

    found = lock_subscriptions(account_id=account.pk, product_codes=[WEBINAR_PRODUCT])
    return found[0] if found else None


def _require_free_license(account: Account) -> Subscription:
    subscription = _webinar_subscription(account)
    if subscription is None:
        raise NoSubscription(
            "This account has no subscription yet: subscribe to a plan, then assign its licenses.")
    used = LicenseAssignment.objects.filter(subscription=subscription).count()
    if used >= subscription.quantity:
        raise NoFreeLicense(
            f"All {subscription.quantity} licenses are assigned. Unassign one first, or add "
            "licenses to your subscription.", bought=subscription.quantity, used=used)
    return subscription


def invitation_find(*, token: str) -> Invitation:
    """The pending invitation of a link's ``token`` (``<id>.<nonce>``), or InvitationUnusable
    (``params.reason``: unknown, accepted, revoked, expired) — compared in constant time."""
    import hmac

    ident, _, nonce = token.partition(".")
    invitation = (Invitation.objects.select_related("account").filter(pk=int(ident)).first()
                  if ident.isdigit() and len(ident) < 18 else None)
    if invitation is None or not nonce.isascii() or not hmac.compare_digest(
            invitation.nonce_hash, _hash(nonce)):
        raise InvitationUnusable("This invitation link is not valid.", reason="unknown")
    status = invitation.status_at(now())
    if status != "pending":
        raise InvitationUnusable(f"This invitation is {status}.", reason=status)
    return invitation


def invitation_accept(*, token: str, user: User | None = None, password: str = "",
                      first_name: str = "", last_name: str = "",
                      ip: str | None = None) -> Membership:
    """Use an invitation once: the signed-in ``user`` (whose address must be the invited one)
    joins, or, with no user, a new user of the invited address is created with ``password``
    (already validated by the form). Joins as organizer, with the invited roles, and with a
    license if the invitation says so and one is free — else without (the page says so).
    Refused with InvitationUnusable, InvitationForAnotherAddress, AlreadyMember."""
    with transaction.atomic():
        invitation = invitation_find(token=token)
        account = lock_account(invitation.account_id)
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.status_at(now()) != "pending":  # used by a concurrent request
            raise InvitationUnusable("This invitation was already used.", reason="accepted")
        if user is None:
            if User.objects.filter(email__iexact=invitation.email).exists():
                raise InvitationForAnotherAddress(
                    f"An account already exists for {invitation.email}: sign in to join.",
                    email=invitation.email)
            user = User.objects.create_user(invitation.email, password,
                                            first_name=mask_card_numbers(first_name),
                                            last_name=mask_card_numbers(last_name))
            audit_record(actor=user, action="user.create", account=account, obj=user,
                         after={"email": user.email, "invitation": invitation.pk}, ip=ip)
        elif user.email.lower() != invitation.email.lower():
            raise InvitationForAnotherAddress(
                f"This invitation was sent to {invitation.email}.", email=invitation.email)
        if Membership.objects.filter(account=account, user=user).exists():
            raise AlreadyMember(f"{user.email} is already a member of this account.",
                                email=user.email)
        member = Membership.objects.create(
            user=user, account=account, is_organizer=True, is_admin=invitation.is_admin,
            is_billing_contact=invitation.is_billing_contact)
        at = now()
        invitation.accepted_at, invitation.accepted_by = at, user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit_record(actor=user, action="member.join", account=account, obj=member,
                     after={"user": user.email, "roles": member.roles,
                            "invitation": invitation.pk}, ip=ip)
        if invitation.with_license:
            subscription = _webinar_subscription(account)
            if subscription is not None:
                try:
                    with transaction.atomic():
                        _assign(actor=invitation.invited_by, subscription=subscription,
                                member=member, ip=ip)
                except NoFreeLicense:
                    pass  # joined without one; the Licenses page shows who may get one
    return member


def invitation_revoke(*, actor: User, account: Account, invitation_id: int | str,
                      ip: str | None = None) -> None:
    """Withdraw a pending invitation of the account (its link stops working)."""
    with transaction.atomic():
        lock_account(account.pk)
        invitation = Invitation.objects.filter(
            account=account, pk=int(invitation_id) if str(invitation_id).isdigit() else -1,
            accepted_at__isnull=True, revoked_at__isnull=True).first()
        if invitation is None:
            raise InvitationUnusable("This invitation is no longer pending.", reason="unknown")
        invitation.revoked_at = now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="member.invite.revoke", account=account,
                     obj=invitation, before={"email": invitation.email}, ip=ip)


# --- fewer licenses than assigned (an order that reduces the count) ---------------------------------


def _shortfall(subscription: Subscription, quantity: int) -> tuple[int, int]:
    assigned = LicenseAssignment.objects.filter(subscription=subscription).count()
    return assigned, max(0, assigned - quantity)


def license_release_choose(*, actor: User, account: Account, product_code: str, quantity: int,
                           member_ids: Iterable[int | str]) -> list[LicenseRelease]:
    """Record who loses their license if the account's next order for ``product_code`` leaves
    ``quantity`` licenses: at least as many of the current holders as are too many (replacing
    an earlier choice). Nothing is unassigned here: the order does it when it is placed. With
    enough licenses the choice is cleared. Refused with LicensesToFree when too few are chosen."""
    wanted = {int(m) for m in member_ids if str(m).isdigit()}
    with transaction.atomic():
        lock_account(account.pk)
        found = lock_subscriptions(account_id=account.pk, product_codes=[product_code])
        if not found:
            return []
        subscription = found[0]
        LicenseRelease.objects.filter(subscription=subscription, order__isnull=True).delete()
        assigned, to_free = _shortfall(subscription, quantity)
        if not to_free:
            return []
        holders = list(LicenseAssignment.objects.select_related("member__user")
                       .filter(subscription=subscription, member_id__in=wanted))
        if len(holders) < to_free:
            raise LicensesToFree(
                f"The new count leaves {quantity} licenses for {assigned} members who hold one: "
                f"choose {to_free} member(s) who lose their license.",
                licenses=quantity, assigned=assigned, to_free=to_free)
        at = now()
        return LicenseRelease.objects.bulk_create([
            LicenseRelease(subscription=subscription, member=holder.member,
                           email=holder.member.user.email, chosen_at=at, chosen_by=actor)
            for holder in holders])


def pending_releases(*, account: Account, product_code: str) -> list[LicenseRelease]:
    """The members chosen to lose their license at the next order (by e-mail)."""
    return list(LicenseRelease.objects.filter(
        subscription__account=account, subscription__product__code=product_code,
        order__isnull=True).order_by("email", "id"))


def licenses_check_order(*, subscriptions: dict[str, Subscription],
                         quantities: dict[str, int]) -> None:
    """Before an order is recorded (under the account and subscription locks): every product
    whose new license count is below its assignments needs the members chosen to lose theirs
    (LicensesToFree otherwise; nothing is written)."""
    for code, quantity in quantities.items():
        subscription = subscriptions.get(code)
        # Assignments never exceed the current count (assigning past it is refused), so only
        # a reduction can leave members without a license: no count to read otherwise.
        if subscription is None or quantity >= subscription.quantity:
            continue
        assigned, to_free = _shortfall(subscription, quantity)
        if not to_free:
            continue
        chosen = LicenseRelease.objects.filter(
            subscription=subscription, order__isnull=True,
            member__license_assignments__subscription=subscription).count()
        if chosen < to_free:
            raise LicensesToFree(
                f"The new count leaves {quantity} licenses for {assigned} members who hold one: "
                f"choose {to_free} member(s) who lose their license on Modify subscription.",
                licenses=quantity, assigned=assigned, to_free=to_free)


def licenses_apply_order(*, order: Any, subscriptions: Iterable[Subscription],
                         actor: User | None) -> list[str]:
    """In the transaction that applies ``order`` (its subscriptions saved with their new
    counts): free the licenses of the members chosen, so that no subscription has more
    assignments than licenses. Should the holders have changed since the check (a license
    assigned meanwhile), the most recent assignments go too, so the rule holds whatever
    happened; each unassignment is audited and e-mailed. Returns the e-mails freed."""
    freed: list[str] = []
    at = now()
    # The counts the order was priced from: a subscription whose count did not go down cannot
    # hold more assignments than licenses (each assignment was checked against the older, lower
    # or equal count), so its assignments need no reading. A purchase (no previous count) may
    # reactivate a subscription whose members kept their assignments: it is read.
    before = {item.subscription_id: item.previous.quantity
              for item in order.summary.items if item.previous is not None}
    for subscription in subscriptions:
        previous = before.get(subscription.pk)
        if previous is not None and subscription.quantity >= previous:
            continue
        _assigned, to_free = _shortfall(subscription, subscription.quantity)
        if not to_free:
            continue
        chosen = list(LicenseRelease.objects.filter(subscription=subscription,
                                                    order__isnull=True).order_by("id"))
        members = [r.member_id for r in chosen if r.member_id is not None]
        holders = list(LicenseAssignment.objects
                       .select_related("member__user", "member__account", "subscription__product")
                       .filter(subscription=subscription)
                       .order_by("-assigned_at", "-id"))
        ordered = ([a for a in holders if a.member_id in members]
                   + [a for a in holders if a.member_id not in members])
        for assignment in ordered[:max(to_free, len([a for a in holders
                                                      if a.member_id in members]))]:
            freed.append(assignment.member.user.email)
            _unassign(actor=actor, assignment=assignment, reason=f"order:{order.pk}", ip=None)
        LicenseRelease.objects.filter(pk__in=[r.pk for r in chosen]).update(order=order,
                                                                           released_at=at)
    return freed
