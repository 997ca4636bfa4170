"""Countries and their time zones, for sign-up and billing details (Babel's CLDR data, IANA zones).

An account that has not chosen a time zone is shown in UTC (the project's zone, in which every period
is stored); sign-up and the billing details page propose the country's zone (:func:`default_time_zone`).
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache

from babel import Locale
from babel.core import get_global

#: Babel territory codes that are not countries one can be established in.
_NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ", "AQ"})

#: The zone most of a many-zoned country's people live in; others take CLDR's first zone.
_MAIN_ZONE = {
    "US": "America/New_York", "CA": "America/Toronto", "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo", "RU": "Europe/Moscow", "MX": "America/Mexico_City",
    "ES": "Europe/Madrid", "PT": "Europe/Lisbon", "ID": "Asia/Jakarta", "KZ": "Asia/Almaty",
    "CL": "America/Santiago", "EC": "America/Guayaquil", "CD": "Africa/Kinshasa",
    "MN": "Asia/Ulaanbaatar", "DE": "Europe/Berlin",
}


@lru_cache(maxsize=4)
def country_choices(language: str) -> tuple[tuple[str, str], ...]:
    """Every country as (ISO 3166 code, its name in ``language``), sorted by name."""
    try:
        territories = Locale.parse(language.replace("-", "_")).territories
    except (ValueError, TypeError):
        territories = Locale.parse("en").territories
    return tuple(sorted(
        ((code, str(name)) for code, name in territories.items()
         if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES),
        key=lambda item: item[1].casefold(),
    ))


@lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    """Every IANA zone name this machine knows (Etc/ and legacy aliases included)."""
    return frozenset(zoneinfo.available_timezones())


def default_time_zone(country: str) -> str:
    """The time zone proposed to an account of ``country``; ``UTC`` if unknown."""
    code = country.upper()
    if code in _MAIN_ZONE:
        return _MAIN_ZONE[code]
    known = dict(country_choices("en"))
    zones = (get_global("territory_zones").get(code) or []) if code in known else []
    return next((zone for zone in zones if zone in time_zones()), "UTC")
