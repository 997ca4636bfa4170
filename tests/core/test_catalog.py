import pytest

from prorata_core.errors import NotInCatalog
from prorata_core.money import Money
from tests.demo_catalog import CATALOG


def test_lookups():
    assert CATALOG.price("pro", "annual", "EUR").unit_amount == Money(219600, "EUR")
    assert [p.code for p in CATALOG.plans_of("webinar")] == [
        "free_trial", "lite", "standard", "pro", "enterprise"]
    assert CATALOG.plan("free_trial").is_trial and not CATALOG.plan("lite").is_trial


@pytest.mark.parametrize(
    ("lookup", "words"),
    [(lambda: CATALOG.plan("gold"), "no plan 'gold'"),
     (lambda: CATALOG.cycle("weekly"), "annual, monthly"),
     (lambda: CATALOG.price("lite", "annual", "JPY"), "not sold annual in JPY")],
)
def test_unknown_keys_say_what_exists(lookup, words):
    with pytest.raises(NotInCatalog) as refused:
        lookup()
    assert words in refused.value.message
    assert refused.value.http_status == 404
