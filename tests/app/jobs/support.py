"""What the billing run's exactly-once tests share: the checks after a run over ``_load``'s due
subscriptions, and the address of the test database for the processes a test starts."""

from benchmarks.billing_run import RUN_AT
from django.conf import settings

from prorata.billing.models import Document, DocumentKind, LedgerEntry
from prorata.jobs.models import Renewal
from prorata.subscriptions.models import Subscription
from tests.app.subscriptions.support import assert_books_balance


def assert_each_period_once(subscriptions: int) -> None:
    """Every one of the ``subscriptions`` due at RUN_AT renewed once, with gapless invoice numbers
    none of which is reused, one ledger entry per invoice, and the books balanced."""
    assert Renewal.objects.count() == subscriptions
    assert not Subscription.objects.filter(period_end__lte=RUN_AT).exists()
    sequences = sorted(Document.objects.filter(kind=DocumentKind.INVOICE)
                       .values_list("sequence", flat=True))
    assert sequences == list(range(1, subscriptions + 1))  # gapless, none reused
    assert LedgerEntry.objects.filter(kind="invoice").count() == subscriptions
    assert_books_balance()


def test_database_url() -> str:
    """``DATABASE_URL`` of this test's PostgreSQL database, for the processes a test starts (they
    read the environment, not the test runner's settings)."""
    database = settings.DATABASES["default"]
    return (f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}")


test_database_url.__test__ = False  # a helper named like a test: not one
