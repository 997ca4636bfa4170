"""DESIGN §2, written out by hand in minor units, for the tests to compare against."""

#: (plan, cycle, currency) → unit amount per license, in cents.
DESIGN_PRICES = {
    ("free_trial", "monthly", "USD"): 0,
    ("free_trial", "monthly", "EUR"): 0,
    ("lite", "monthly", "USD"): 5_900,
    ("lite", "monthly", "EUR"): 5_500,
    ("lite", "annual", "USD"): 58_800,
    ("lite", "annual", "EUR"): 55_200,
    ("standard", "monthly", "USD"): 12_900,
    ("standard", "monthly", "EUR"): 11_900,
    ("standard", "annual", "USD"): 118_800,
    ("standard", "annual", "EUR"): 110_400,
    ("pro", "monthly", "USD"): 24_900,
    ("pro", "monthly", "EUR"): 22_900,
    ("pro", "annual", "USD"): 238_800,
    ("pro", "annual", "EUR"): 219_600,
}

#: code → (name, rank, participant limit, features, trial days, self-service, min, max licenses)
DESIGN_PLANS = {
    "free_trial": ("Free trial", 0, 100, [], 14, True, 1, 1),
    "lite": ("Lite", 1, 250, [], None, True, 1, 10_000),
    "standard": ("Standard", 2, 500, ["recording", "custom_branding"], None, True, 1, 10_000),
    "pro": (
        "Pro", 3, 1000, ["recording", "custom_branding", "webcasts", "api_access"], None, True, 1,
        10_000,
    ),
    "enterprise": (
        "Enterprise", 4, 3000,
        ["recording", "custom_branding", "webcasts", "api_access", "dedicated_advisor"], None, False,
        1, 10_000,
    ),
}  # fmt: skip

DESIGN_CYCLES = {"monthly": 1, "annual": 12, "quarterly": 3}
