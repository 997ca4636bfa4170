"""The WSGI application served in production (``gunicorn prorata.wsgi:application``).

Before the first request, the worker loads what every request would otherwise load lazily (the
URL configuration with every view, the API and its schemas; each language's number and date
formats) and then hides everything loaded so far from the garbage collector (``gc.freeze``):
those objects live as long as the process, and a full collection that walked them paused a
request now and then for tens of milliseconds (measured in benchmarks/README.md, the HTTP section:
that pause was the web page's p99). The collector still runs as usual on what requests create.
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prorata.settings.base")
django_application = get_wsgi_application()

from prorata.api.fastpath import EntitlementFastPath  # noqa: E402  (needs the apps loaded)

#: Django, with the entitlement endpoint's 200s and 304s answered before it (prorata.api.fastpath).
application = EntitlementFastPath(django_application)


def _warm_up() -> None:
    from datetime import date

    from django.conf import settings
    from django.urls import get_resolver

    from prorata.common.formatting import format_date, format_money
    from prorata_core.money import Money

    resolver = get_resolver()
    resolver.url_patterns  # noqa: B018  (imports the URL configuration: every view, the API)
    resolver.reverse_dict  # noqa: B018  (what {% url %} and reverse() look names up in)
    for language, _name in settings.LANGUAGES:
        format_money(Money(0, "EUR"), language)
        format_date(date(2026, 1, 1), language)


_warm_up()
gc.collect()
gc.freeze()
