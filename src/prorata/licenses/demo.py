"""The demo's licenses and webinars (issue 13), made through the services.

Acme's Standard subscription has 2 licenses: carol (organizer) holds one, bob (admin) none, one is
free. Carol has scheduled two webinars (New York time). Idempotent: what exists is kept.
Needs the demo's people and subscriptions, and the movable clock (the webinars are dated).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from prorata.accounts.models import Account, Membership, User
from prorata.common.clock import MOVABLE, clock_mode, now
from prorata.licenses.models import LicenseAssignment
from prorata.licenses.services import license_assign
from prorata.subscriptions.models import Subscription
from prorata.webinars.models import Webinar
from prorata.webinars.services import webinar_schedule

NEW_YORK = "America/New_York"
#: (title, local start in New York, minutes)
WEBINARS = [
    ("Spring product launch", datetime(2026, 3, 20, 11, 0), 60),
    ("Customer Q&A", datetime(2026, 4, 15, 14, 30), 45),
]


def demo_load_licenses() -> list[str]:
    """Give carol a license of Acme's subscription and schedule her two webinars; return the
    lines to print."""
    account = Account.objects.filter(name="Acme Corp").first()
    carol = User.objects.filter(email="carol@acme.example").first()
    alice = User.objects.filter(email="alice@acme.example").first()
    subscription = Subscription.objects.filter(account=account, product__code="webinar").first()
    if account is None or carol is None or alice is None or subscription is None:
        return ["Licenses: skipped (load the demo's people and subscriptions first)."]
    member = Membership.objects.get(account=account, user=carol)
    if not LicenseAssignment.objects.filter(subscription=subscription, member=member).exists():
        license_assign(actor=alice, account=account, subscription_id=subscription.pk,
                       member_id=member.pk)
    used = LicenseAssignment.objects.filter(subscription=subscription).count()
    lines = [f"Licenses: Acme Corp {used} of {subscription.quantity} assigned "
             "(carol@acme.example holds one; bob@acme.example none)."]
    if clock_mode() != MOVABLE:
        return [*lines, "Webinars: skipped (they are dated; set PRORATA_CLOCK=movable)."]
    for title, local, minutes in WEBINARS:
        starts_at = local.replace(tzinfo=ZoneInfo(NEW_YORK))
        if not Webinar.objects.filter(account=account, title=title).exists() and \
                starts_at > now():
            webinar_schedule(organizer=carol, account=account, title=title, starts_at=starts_at,
                             duration_minutes=minutes, time_zone=NEW_YORK)
    for webinar in Webinar.objects.filter(account=account, cancelled_at__isnull=True):
        lines.append(f"  Webinar by carol: {webinar.title}, {webinar.starts_at:%Y-%m-%d %H:%M} "
                     f"UTC, /webinars/{webinar.public_id}/")
    return lines
