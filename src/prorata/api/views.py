"""The tokens pages: list, create (the token is shown once, in that response), revoke."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from prorata.accounts.throttle import client_ip
from prorata.api.forms import ApiTokenForm
from prorata.api.selectors import api_token_of, api_tokens_of
from prorata.api.services import api_token_create, api_token_revoke
from prorata.common.clock import now
from prorata_core.errors import ProrataError


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    """GET: the user's tokens and the creation form. POST: create one and show it this once."""
    new_token = None
    form = ApiTokenForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            _row, new_token = api_token_create(
                user=request.user, name=form.cleaned_data["name"], valid_for=form.valid_for(),
                ip=client_ip(request),
            )
        except ProrataError as exc:
            form.add_error(None, exc.message)
        else:
            form = ApiTokenForm()
    instant = now()
    response = render(request, "api/tokens.html", {
        "form": form,
        "new_token": new_token,
        "tokens": [(token, token.status_at(instant)) for token in api_tokens_of(user=request.user)],
    })
    # The page may hold the only copy of a secret: keep it out of every cache.
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    """Revoke one of the user's own tokens; anyone else's is a 404."""
    token = api_token_of(user=request.user, token_id=token_id)
    if token is None:
        raise Http404("No such token")
    api_token_revoke(actor=request.user, token=token, ip=client_ip(request))
    messages.success(
        request, _("The token “%(name)s” is revoked: it no longer opens the API.") % {"name": token.name}
    )
    return redirect("api_tokens:list")
