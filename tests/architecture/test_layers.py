"""The layers hold (docs/architecture.md): edges → services and selectors → models and common →
prorata_core, common imports no app, selectors never import services. The rules are by module
role, so a new app is covered without being listed (tests/architecture/layers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.architecture.layers import COMMON, CORE, EDGE, MODEL, SERVICE, layer, violations

SRC = Path(__file__).resolve().parents[2] / "src"


def test_no_module_imports_upward():
    assert violations(SRC) == []


@pytest.mark.parametrize("module, rank", [
    ("prorata_core.orders", CORE),
    ("prorata.common.db", COMMON),
    ("prorata.common.management.commands.clock", COMMON),
    ("prorata.billing.models", MODEL),
    ("prorata.billing.errors", MODEL),
    ("prorata.accounts.queries", MODEL),
    ("prorata.subscriptions.snapshot", MODEL),
    ("prorata.billing.services", SERVICE),
    ("prorata.billing.services.writer", SERVICE),
    ("prorata.subscriptions.selectors", SERVICE),
    ("prorata.billing.receipts", SERVICE),
    ("prorata.licenses.entitlements", SERVICE),  # an app that does not exist yet
    ("prorata.billing.admin", EDGE),
    ("prorata.billing.apps", EDGE),
    ("prorata.licenses.views", EDGE),
    ("prorata.web.views_billing", EDGE),
    ("prorata.web.urls_billing", EDGE),
    ("prorata.jobs.billing_run", EDGE),
    ("prorata.jobs.models", MODEL),
    ("prorata.api.services", SERVICE),
    ("prorata.api.subscriptions", EDGE),
    ("prorata.console.pages", EDGE),
    ("prorata.support.management.commands.answer", EDGE),
    ("prorata.notifications.templatetags.prorata_email", EDGE),
    ("prorata.urls", EDGE),
    ("prorata.settings.base", EDGE),
])
def test_a_module_s_layer_follows_from_its_name(module, rank):
    assert layer(module) == rank


def _tree(tmp_path, files):
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in ("prorata", "prorata_core"):
        (tmp_path / package).mkdir(exist_ok=True)
    return tmp_path


def test_the_contract_sees_each_kind_of_upward_import(tmp_path):
    root = _tree(tmp_path, {
        "prorata/common/bad.py": "from prorata.shop.models import Item\n",
        "prorata/shop/models.py": "from prorata.shop import services\n",
        "prorata/shop/services.py": "def f():\n    from prorata.shop.views import page\n",
        "prorata/shop/selectors.py": "from prorata.shop.services import g\n",
        "prorata/shop/views.py": "from . import services, selectors\nfrom .models import Item\n",
        "prorata/shop/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                 "    from prorata.shop.views import page\n",
        "prorata/jobs/run.py": "from prorata.shop.services import g\n",
        "prorata/shop/pricing.py": "import prorata.jobs.run\n",
    })
    found = violations(root)
    assert found == [
        "prorata.common.bad:1 imports prorata.shop.models: common imports no app",
        "prorata.shop.models:1 imports prorata.shop.services: upward, from the model layer to the "
        "service layer",
        "prorata.shop.pricing:1 imports prorata.jobs.run: upward, from the service layer to the "
        "edge layer",
        "prorata.shop.selectors:1 imports prorata.shop.services: a selector (read) imports a "
        "services module (write)",
        "prorata.shop.services:2 imports prorata.shop.views: upward, from the service layer to the "
        "edge layer",
    ]
