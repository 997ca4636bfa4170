"""Sign-up and free trial from the public plans page (S16).

A plan card's **Start free trial** or **Buy** opens ``/accounts/signup/?plan=<code>``: the visitor
gives their company, country, e-mail and password (:func:`signup`), confirms the e-mail by the link
sent to it (:func:`signup_confirm`) and is then signed in, in their billing center: with the free
trial started, or on the chosen plan's order summary (Modify subscription), which leads to the same
checkout as every other purchase. The chosen plan travels in the link's query string and is checked
again against today's catalog when the link is used.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import get_language, gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from prorata.accounts.credentials import signin_succeeded
from prorata.accounts.errors import EmailLinkInvalid, EmailNotSent, EmailTaken
from prorata.accounts.models import Account, User
from prorata.accounts.permissions import Action, accounts_of, can
from prorata.accounts.signup import (
    SignUpInvalid,
    currency_for_country,
    signup_check,
    signup_create,
    signup_uid,
)
from prorata.accounts.signup import (
    signup_confirm as signup_confirm_service,
)
from prorata.accounts.throttle import client_ip
from prorata.catalog.selectors import catalog_snapshot
from prorata.common.formatting import format_date
from prorata.common.urls import absolute_url
from prorata.subscriptions.services import subscription_start_trial
from prorata.web.errors import error_message
from prorata.web.forms_signup import SignUpForm
from prorata_core.catalog import Plan
from prorata_core.errors import ProrataError


def _plan(code: str | None) -> Plan | None:
    """The offered plan of that code that a visitor may start online, or None."""
    if not code:
        return None
    plan = catalog_snapshot(active_only=True).plans.get(code)
    return plan if plan is not None and plan.self_service else None


def _choice_query(plan: Plan | None, cycle: str) -> str:
    if plan is None:
        return ""
    return "?" + urlencode({"plan": plan.code, **({"cycle": cycle} if cycle else {})})


def _language() -> str:
    return (get_language() or "en").split("-")[0]


def _next_step(request: HttpRequest, user: User, account: Account, plan: Plan | None,
               cycle: str) -> HttpResponse:
    """After confirming (or for a signed-in visitor): the trial started, or the order summary."""
    if plan is None:
        return redirect("billing:account", account_id=account.pk)
    if plan.is_trial:
        try:
            subscription = subscription_start_trial(account=account, product_code=plan.product_code,
                                                    plan_code=plan.code, actor=user)
        except ProrataError as refused:
            messages.error(request, error_message(refused))
        else:
            messages.success(request, gettext(
                "Your free trial of %(plan)s has started. It ends on %(date)s; buy a plan any "
                "time before then to keep your webinars going.") % {
                "plan": plan.name,
                "date": format_date(subscription.period_end, get_language() or "en")})
        return redirect("billing:account", account_id=account.pk)
    modify = reverse("billing:modify", args=[account.pk, plan.product_code])
    return redirect(modify + _choice_query(plan, cycle))


@never_cache
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """``/accounts/signup/?plan=<code>[&cycle=<code>]``: open an account, then confirm the e-mail."""
    source = request.POST if request.method == "POST" else request.GET
    plan = _plan(source.get("plan"))
    cycle = str(source.get("cycle") or "")[:32]
    user = request.user
    if user.is_authenticated:
        managed = [account for account in accounts_of(user)  # type: ignore[arg-type]
                   if can(user, Action.MANAGE_BILLING, account)]  # type: ignore[arg-type]
        if len(managed) == 1:
            return _next_step(request, user, managed[0], plan, cycle)  # type: ignore[arg-type]
        return redirect("billing:index")
    form = SignUpForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        query = _choice_query(plan, cycle)
        try:
            created = signup_create(
                company=data["company"], country=data["country"], email=data["email"],
                password=data["password1"], language=_language(), ip=client_ip(request),
                link_for=lambda new, token: absolute_url(
                    reverse("accounts:signup_confirm", args=[signup_uid(new), token])) + query,
            )
        except EmailTaken as taken:
            form.add_error("email", gettext(taken.message))
        except SignUpInvalid as invalid:
            form.add_error(str(invalid.params.get("field") or None), gettext(invalid.message))
        except EmailNotSent as failed:
            form.add_error(None, gettext(failed.message))
        else:
            return render(request, "web/signup/sent.html", {"email": created.email})
    country = str(form["country"].value() or "")
    return render(request, "web/signup/form.html", {
        "form": form, "plan": plan, "cycle": cycle,
        "currency": currency_for_country(country) if country else "",
    }, status=422 if form.is_bound and form.errors else 200)


@never_cache
@require_http_methods(["GET", "POST"])
def signup_confirm(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """The link of the confirmation e-mail. GET shows a button (mail scanners open links by
    themselves); POST activates the person, signs them in and takes the plan's next step."""
    # The link carries the choice in its query string; the form posts it back in hidden fields.
    plan = _plan(request.POST.get("plan") or request.GET.get("plan"))
    cycle = str(request.POST.get("cycle") or request.GET.get("cycle") or "")[:32]
    try:
        if request.method == "POST":
            user, account = signup_confirm_service(uidb64=uidb64, token=token,
                                                   ip=client_ip(request))
        else:
            pending = signup_check(uidb64=uidb64, token=token)
    except EmailLinkInvalid as invalid:
        return render(request, "web/signup/confirm.html", {"error": gettext(invalid.message)},
                      status=invalid.http_status)
    if request.method == "GET":
        return render(request, "web/signup/confirm.html",
                      {"pending": pending, "plan": plan, "cycle": cycle})
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    signin_succeeded(user=user)
    messages.success(request, gettext("Welcome! Your e-mail address is confirmed."))
    return _next_step(request, user, account, plan, cycle)
