"""What every page's top bar needs: its links, in order, with the current one marked."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import Resolver404, get_urlconf, resolve
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True, slots=True)
class NavLink:
    label: str | Promise
    url: str
    current: bool


#: (label, path, who sees it: "all", "signed_in" or "staff"). A path that the project does not
#: serve (yet) is left out, so the billing center's link appears once /billing/ exists.
LINKS = [
    (_("Plans"), "/plans/", "all"),
    (_("Billing"), "/billing/", "signed_in"),
    (_("Profile"), "/profile/", "signed_in"),
    (_("Staff console"), "/console/", "staff"),
]


@lru_cache(maxsize=8)
def _served(path: str, urlconf: str | None) -> bool:
    try:
        resolve(path, urlconf)
    except Resolver404:
        return False
    return True


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    signed_in = bool(user is not None and user.is_authenticated)
    staff = signed_in and bool(user.is_staff)  # type: ignore[union-attr]
    allowed = {"all"} | ({"signed_in"} if signed_in else set()) | ({"staff"} if staff else set())
    urlconf = get_urlconf() or settings.ROOT_URLCONF
    links = []
    for label, path, audience in LINKS:
        if audience in allowed and _served(path, urlconf):
            # The site's address shows the plans to visitors: the Plans link is current there.
            current = request.path.startswith(path) or (path == "/plans/" and request.path == "/")
            links.append(NavLink(label, path, current))
    return {"nav_links": links}
