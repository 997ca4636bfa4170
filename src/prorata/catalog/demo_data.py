"""The demo catalog of DESIGN §2: one product, Webinar, and its plans and prices per license.

Amounts are written as the decimal strings of DESIGN and parsed with ``Money.of``. Enterprise is
advisor-priced: it has no public price. Quarterly exists as a cycle but has no demo price.
"""

from __future__ import annotations

PRODUCT = {"code": "webinar", "name": "Webinar"}

_ADVANCED = ["recording", "custom_branding"]
_PRO = [*_ADVANCED, "webcasts", "api_access"]

#: code → fields of the plan (besides the product).
PLANS: dict[str, dict[str, object]] = {
    "free_trial": {
        "name": "Free trial", "rank": 0, "participant_limit": 100, "features": [],
        "trial_days": 14, "min_licenses": 1, "max_licenses": 1,
    },
    "lite": {"name": "Lite", "rank": 1, "participant_limit": 250, "features": []},
    "standard": {"name": "Standard", "rank": 2, "participant_limit": 500, "features": _ADVANCED},
    "pro": {"name": "Pro", "rank": 3, "participant_limit": 1000, "features": _PRO},
    "enterprise": {
        "name": "Enterprise", "rank": 4, "participant_limit": 3000,
        "features": [*_PRO, "dedicated_advisor"], "self_service": False,
    },
}  # fmt: skip

#: code → months.
CYCLES = {"monthly": 1, "annual": 12, "quarterly": 3}

#: (plan, cycle) → per-license amount by currency.
PRICES: dict[tuple[str, str], dict[str, str]] = {
    ("free_trial", "monthly"): {"USD": "0.00", "EUR": "0.00"},
    ("lite", "monthly"): {"USD": "59.00", "EUR": "55.00"},
    ("lite", "annual"): {"USD": "588.00", "EUR": "552.00"},
    ("standard", "monthly"): {"USD": "129.00", "EUR": "119.00"},
    ("standard", "annual"): {"USD": "1188.00", "EUR": "1104.00"},
    ("pro", "monthly"): {"USD": "249.00", "EUR": "229.00"},
    ("pro", "annual"): {"USD": "2388.00", "EUR": "2196.00"},
}
