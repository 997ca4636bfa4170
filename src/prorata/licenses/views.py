"""The Licenses page (used / bought, holders, Assign / Unassign), the Members page (invite by
e-mail, roles, remove) and the invitation link's page.

Both pages are for billing contacts and admins (issue 13: they invite people and assign licenses),
which is ``Action.MANAGE_LICENSES``; ``MANAGE_MEMBERS`` stays the admins' (the members API).

Thin edges: ``account_for`` first (404 for another account, 403 without the role), one service,
render. Refusals are shown in the reader's language; a refused action changes nothing.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from prorata.accounts.models import User
from prorata.accounts.permissions import Action, account_for, can
from prorata.licenses import services
from prorata.licenses.errors import InvitationUnusable, NoFreeLicense, message_for
from prorata.licenses.selectors import (
    license_pools,
    members_of,
    pending_invitations,
)
from prorata_core.errors import ProrataError


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def licenses(request: HttpRequest, account_id: int) -> HttpResponse:
    """Each subscription's licenses: used / bought, who holds one; Assign / Unassign (POST
    ``action`` = assign | unassign, ``subscription``, ``member``)."""
    user = _user(request)
    account = account_for(user, account_id, Action.MANAGE_LICENSES)
    refusal: dict[str, Any] | None = None
    status = 200
    if request.method == "POST":
        action = request.POST.get("action")
        call = {"assign": services.license_assign,
                "unassign": services.license_unassign}.get(action or "")
        if call is None:
            messages.error(request, gettext("Choose Assign or Unassign."))
            status = 422
        else:
            try:
                call(actor=user, account=account, subscription_id=request.POST.get("subscription"),
                     member_id=request.POST.get("member"), ip=_ip(request))
            except NoFreeLicense as refused:
                refusal = {"message": message_for(refused),
                           "add_quantity": int(refused.params["bought"]) + 1}
                status = 409
            except ProrataError as refused:
                messages.error(request, message_for(refused))
                status = 422
            else:
                messages.success(request, gettext("License assigned.") if action == "assign"
                                 else gettext("License unassigned."))
                return redirect("licenses:licenses", account_id=account.pk)
    pools = license_pools(account=account)
    members = members_of(account=account)
    rows = []
    for pool in pools:
        holding = {a.member_id for a in pool.holders}
        rows.append({"pool": pool, "holders": pool.holders,
                     "others": [m for m in members if m.pk not in holding],
                     "product_code": pool.subscription.product.code})
    return render(request, "licenses/licenses.html", {
        "account": account, "rows": rows, "refusal": refusal,
        "manage": can(user, Action.MANAGE_BILLING, account),
        "billing": can(user, Action.VIEW_BILLING, account),
        "section": "licenses",
    }, status=status)


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("E-mail address"), max_length=254)
    admin = forms.BooleanField(label=_("Also an admin (manages members and licenses)"),
                               required=False)
    billing_contact = forms.BooleanField(label=_("Also a billing contact"), required=False)
    with_license = forms.BooleanField(label=_("Give them a license at once"), required=False)


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def members(request: HttpRequest, account_id: int) -> HttpResponse:
    """The account's members and pending invitations; POST invites a person by e-mail."""
    user = _user(request)
    account = account_for(user, account_id, Action.MANAGE_LICENSES)
    form = InviteForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.member_invite(actor=user, account=account, email=data["email"],
                                       admin=data["admin"],
                                       billing_contact=data["billing_contact"],
                                       with_license=data["with_license"], ip=_ip(request))
            except ProrataError as refused:
                form.add_error("with_license" if refused.code in (
                    "no_free_license", "no_subscription") else "email", message_for(refused))
            else:
                messages.success(request, gettext("Invitation sent to %(email)s.")
                                 % {"email": data["email"]})
                return redirect("licenses:members", account_id=account.pk)
        status = 422
    return render(request, "licenses/members.html", {
        "account": account, "members": members_of(account=account), "form": form,
        "invitations": pending_invitations(account=account), "section": "members",
        "manage": can(user, Action.MANAGE_BILLING, account),
        "billing": can(user, Action.VIEW_BILLING, account),
    }, status=status)


@login_required
@require_POST
def member_roles(request: HttpRequest, account_id: int, member_id: int) -> HttpResponse:
    """Set a member's roles from the checkboxes ``billing_contact``, ``admin``, ``organizer``."""
    user = _user(request)
    account = account_for(user, account_id, Action.MANAGE_LICENSES)
    try:
        services.member_set_roles(
            actor=user, account=account, member_id=member_id,
            billing_contact=bool(request.POST.get("billing_contact")),
            admin=bool(request.POST.get("admin")), organizer=bool(request.POST.get("organizer")),
            ip=_ip(request))
    except ProrataError as refused:
        messages.error(request, message_for(refused))
        if refused.http_status == 404:
            from django.http import Http404

            raise Http404("No such member") from None
    else:
        messages.success(request, gettext("Roles saved."))
    return redirect("licenses:members", account_id=account.pk)


@login_required
@require_POST
def member_remove_view(request: HttpRequest, account_id: int, member_id: int) -> HttpResponse:
    user = _user(request)
    account = account_for(user, account_id, Action.MANAGE_LICENSES)
    try:
        services.member_remove(actor=user, account=account, member_id=member_id, ip=_ip(request))
    except ProrataError as refused:
        if refused.http_status == 404:
            from django.http import Http404

            raise Http404("No such member") from None
        messages.error(request, message_for(refused))
    else:
        messages.success(request, gettext("Member removed; their license, if any, is free."))
    return redirect("licenses:members", account_id=account.pk)


@login_required
@require_POST
def invitation_revoke_view(request: HttpRequest, account_id: int,
                           invitation_id: int) -> HttpResponse:
    user = _user(request)
    account = account_for(user, account_id, Action.MANAGE_LICENSES)
    try:
        services.invitation_revoke(actor=user, account=account, invitation_id=invitation_id,
                                   ip=_ip(request))
    except InvitationUnusable:
        from django.http import Http404

        raise Http404("No such invitation") from None
    messages.success(request, gettext("Invitation withdrawn."))
    return redirect("licenses:members", account_id=account.pk)


class JoinForm(forms.Form):
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    password = forms.CharField(label=_("Password"), widget=forms.PasswordInput, strip=False)

    def __init__(self, *args: Any, email: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.email = email

    def clean_password(self) -> str:
        password: str = self.cleaned_data["password"]
        try:
            validate_password(password, User(email=self.email))
        except DjangoValidationError as invalid:
            raise forms.ValidationError(invalid.messages) from None
        return password


@never_cache
@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """Public: the link of an invitation e-mail. Signed in with the invited address: Join.
    Signed out, and no user has that address: set a password and join. Else: sign in first."""
    try:
        found = services.invitation_find(token=token)
    except InvitationUnusable as refused:
        return render(request, "licenses/invitation.html",
                      {"unusable": message_for(refused)}, status=410)
    user = _user(request)
    signed_in = user.is_authenticated
    existing = (not signed_in) and User.objects.filter(email__iexact=found.email).exists()
    form = JoinForm(request.POST or None, email=found.email)
    error = ""
    if request.method == "POST":
        try:
            if signed_in:
                services.invitation_accept(token=token, user=user, ip=_ip(request))
            elif form.is_valid():
                member = services.invitation_accept(
                    token=token, password=form.cleaned_data["password"],
                    first_name=form.cleaned_data["first_name"],
                    last_name=form.cleaned_data["last_name"], ip=_ip(request))
                login(request, member.user,
                      backend="django.contrib.auth.backends.ModelBackend")
            else:
                raise _FormInvalid
        except _FormInvalid:
            pass
        except ProrataError as refused:
            error = message_for(refused)
        else:
            messages.success(request, gettext("Welcome to %(account)s.")
                             % {"account": found.account.name})
            return redirect("webinars:list", account_id=found.account_id)
    login_url = f"{reverse('accounts:sign_in')}?next={request.path}"
    return render(request, "licenses/invitation.html", {
        "invitation": found, "form": form, "signed_in": signed_in, "existing": existing,
        "error": error, "login_url": login_url,
        "other_address": signed_in and user.email.lower() != found.email.lower(),
    }, status=422 if request.method == "POST" else 200)


class _FormInvalid(Exception):
    pass
