"""DESIGN §2's catalog as core values, for tests that need no database."""

from prorata_core.catalog import ANNUAL, MONTHLY, Catalog, Plan, Price, Product
from prorata_core.money import Money
from prorata_core.orders import Configuration
from prorata_core.tax import TaxDecision, TaxRule

WEBINAR = Product("webinar", "Webinar")
FREE_TRIAL = Plan("free_trial", "webinar", "Free trial", 0, 100, trial_days=14, max_licenses=1)
LITE = Plan("lite", "webinar", "Lite", 1, 250)
STANDARD = Plan("standard", "webinar", "Standard", 2, 500, frozenset({"recording", "custom_branding"}))
PRO = Plan(
    "pro", "webinar", "Pro", 3, 1000,
    frozenset({"recording", "custom_branding", "webcasts", "api_access"}),
)  # fmt: skip
ENTERPRISE = Plan("enterprise", "webinar", "Enterprise", 4, 3000, self_service=False)

_PRICES = {
    ("lite", "monthly"): ("59.00", "55.00"),
    ("lite", "annual"): ("588.00", "552.00"),
    ("standard", "monthly"): ("129.00", "119.00"),
    ("standard", "annual"): ("1188.00", "1104.00"),
    ("pro", "monthly"): ("249.00", "229.00"),
    ("pro", "annual"): ("2388.00", "2196.00"),
    ("free_trial", "monthly"): ("0", "0"),
    ("enterprise", "annual"): ("40000.00", "36000.00"),  # an advisor's offer
}

CATALOG = Catalog.build(
    products=[WEBINAR],
    plans=[FREE_TRIAL, LITE, STANDARD, PRO, ENTERPRISE],
    cycles=[MONTHLY, ANNUAL],
    prices=[
        Price(plan, cycle, Money.of(amount, currency))
        for (plan, cycle), amounts in _PRICES.items()
        for amount, currency in zip(amounts, ("USD", "EUR"), strict=True)
    ],
)

NO_TAX = TaxDecision(rate_bp=0, rule=TaxRule.OUTSIDE_EU, country="US", mention=None)
FRENCH_VAT = TaxDecision(rate_bp=2000, rule=TaxRule.DOMESTIC, country="FR", mention=None)


def config(plan: str, cycle: str, quantity: int, currency: str = "USD") -> Configuration:
    price = CATALOG.price(plan, cycle, currency)
    return Configuration(CATALOG.plan(plan), CATALOG.cycle(cycle), quantity, price.unit_amount)
