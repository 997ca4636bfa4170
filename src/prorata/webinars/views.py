"""Webinar pages: the account's upcoming webinars, schedule / edit / cancel for licensed
organizers, and the public registration page.

``account_for`` first: any member sees the account's webinars (VIEW_ACCOUNT); scheduling and
editing need the organizer role (HOST_WEBINARS) and, checked by the service, a license and a live
subscription. Refusals are page messages in the reader's language; nothing is changed by them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from prorata.accounts.models import User
from prorata.accounts.permissions import Action, account_for, can
from prorata.common.clock import now
from prorata.webinars import services
from prorata.webinars.errors import REASONS, message_for
from prorata.webinars.models import Webinar
from prorata.webinars.selectors import hosting_refusal, upcoming_webinars, webinar_limit
from prorata_core.errors import ProrataError

ZONES = sorted(available_timezones() - {"localtime", "Factory"})


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


class WebinarForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    start = forms.DateTimeField(label=_("Start"), input_formats=["%Y-%m-%dT%H:%M"],
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                           format="%Y-%m-%dT%H:%M"))
    duration_minutes = forms.IntegerField(label=_("Duration (minutes)"), min_value=5,
                                          max_value=1440, initial=60)
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=[(z, z) for z in ZONES],
                                  help_text=_("Yours: the start is shown in this zone."))

    def starts_at(self) -> datetime:
        """The start as a UTC-comparable instant: the wall time read in the chosen zone."""
        naive: datetime = self.cleaned_data["start"]
        return naive.replace(tzinfo=None).replace(tzinfo=ZoneInfo(self.cleaned_data["time_zone"]))


def _frame(user: User, account: Any) -> dict[str, Any]:
    return {"manage": can(user, Action.MANAGE_BILLING, account),
            "billing": can(user, Action.VIEW_BILLING, account),
            "admin": can(user, Action.MANAGE_LICENSES, account),
            "organizer": can(user, Action.HOST_WEBINARS, account)}


@login_required
@never_cache
def webinars(request: HttpRequest, account_id: int) -> HttpResponse:
    """The account's upcoming webinars; admins see which hosts hold no license."""
    user = _user(request)
    account = account_for(user, account_id, Action.VIEW_ACCOUNT)
    reason = hosting_refusal(user=user, account=account) if can(
        user, Action.HOST_WEBINARS, account) else None
    return render(request, "webinars/list.html", {
        "account": account, "rows": upcoming_webinars(account=account),
        "refusal": REASONS[reason] if reason else "", "section": "webinars",
        **_frame(user, account),
    })


def _save(request: HttpRequest, account_id: int, webinar_id: int | None) -> HttpResponse:
    user = _user(request)
    account = account_for(user, account_id, Action.HOST_WEBINARS)
    webinar = None
    if webinar_id is not None:
        webinar = Webinar.objects.filter(account=account, pk=webinar_id, organizer=user).first()
        if webinar is None:
            raise Http404("No such webinar")
    reason = hosting_refusal(user=user, account=account) if webinar is None else None
    initial = ({"title": webinar.title, "duration_minutes": webinar.duration_minutes,
                "time_zone": webinar.time_zone,
                "start": webinar.starts_at.astimezone(ZoneInfo(webinar.time_zone))}
               if webinar is not None else
               {"time_zone": services.default_time_zone(account), "duration_minutes": 60})
    form = WebinarForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            data = form.cleaned_data
            try:
                if webinar is None:
                    saved = services.webinar_schedule(
                        organizer=user, account=account, title=data["title"],
                        starts_at=form.starts_at(), duration_minutes=data["duration_minutes"],
                        time_zone=data["time_zone"])
                    messages.success(request, gettext("Webinar scheduled."))
                else:
                    saved = services.webinar_update(
                        user=user, account=account, webinar_id=webinar.pk, title=data["title"],
                        starts_at=form.starts_at(), duration_minutes=data["duration_minutes"],
                        time_zone=data["time_zone"])
                    messages.success(request, gettext("Webinar saved."))
            except ProrataError as refused:
                field = refused.params.get("field")
                target = {"starts_at": "start"}.get(str(field), str(field)) if field else None
                form.add_error(target if target in form.fields else None, message_for(refused))
                status = 403 if refused.code == "hosting_refused" else 422
            else:
                return redirect("webinars:list", account_id=saved.account_id)
    return render(request, "webinars/form.html", {
        "account": account, "form": form, "webinar": webinar, "section": "webinars",
        "refusal": REASONS[reason] if reason else "",
        "limit": webinar_limit(webinar) if webinar is not None else None,
        **_frame(user, account),
    }, status=status)


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def schedule(request: HttpRequest, account_id: int) -> HttpResponse:
    return _save(request, account_id, None)


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, account_id: int, webinar_id: int) -> HttpResponse:
    return _save(request, account_id, webinar_id)


@login_required
@require_POST
def cancel(request: HttpRequest, account_id: int, webinar_id: int) -> HttpResponse:
    user = _user(request)
    account = account_for(user, account_id, Action.HOST_WEBINARS)
    try:
        services.webinar_cancel(user=user, account=account, webinar_id=webinar_id)
    except ProrataError as refused:
        if refused.http_status == 404:
            raise Http404("No such webinar") from None
        messages.error(request, message_for(refused))
    else:
        messages.success(request, gettext("Webinar cancelled."))
    return redirect("webinars:list", account_id=account.pk)


class RegistrationForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    email = forms.EmailField(label=_("E-mail address"), max_length=254)


@never_cache
@require_http_methods(["GET", "POST"])
def register(request: HttpRequest, public_id: str) -> HttpResponse:
    """Public: a webinar's registration page (name + e-mail)."""
    webinar = (Webinar.objects.select_related("account", "organizer")
               .filter(public_id=public_id).first())
    if webinar is None:
        raise Http404("No such webinar")
    form = RegistrationForm(request.POST or None)
    status = 200
    done = False
    if request.method == "POST":
        status = 422
        if form.is_valid():
            try:
                services.registration_create(public_id=public_id, name=form.cleaned_data["name"],
                                             email=form.cleaned_data["email"],
                                             language=(get_language() or "en")[:2])
            except ProrataError as refused:
                form.add_error(None, message_for(refused))
                status = 409 if refused.http_status == 409 else 422
            else:
                done, status = True, 200
    at = now()
    return render(request, "webinars/register.html", {
        "webinar": webinar, "form": form, "done": done,
        "closed": webinar.cancelled_at is not None or webinar.starts_at <= at,
        "limit": webinar_limit(webinar, at),
    }, status=status)
