"""One error vocabulary: every failure of the API is ``{"code", "message", "params"}``."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import HttpError
from ninja.testing import TestClient

from prorata.api.errors import NOT_FOUND_MESSAGE, install_error_handlers
from prorata_core.errors import (
    ChangeRefused,
    DowngradeNeedsSupport,
    InvalidVatNumber,
    NotInCatalog,
    ValidationError,
)
from tests.app.api.conftest import ApiClient

pytestmark = pytest.mark.django_db


def _raiser(exc: Exception):
    def view(request):
        raise exc

    return view


RAISED = {
    "invalid-input": ValidationError("Licenses must be at least 1.", licenses=0),
    "vat": InvalidVatNumber("FR123 is not a valid VAT number.", vat_number="FR123"),
    "not-in-catalog": NotInCatalog("There is no plan 'gold'.", plan="gold"),
    "refused": ChangeRefused("Corporate accounts change through their advisor."),
    "downgrade": DowngradeNeedsSupport("A plan downgrade is done by our support team."),
    "404": Http404("No Account matches the given query."),
    "403": PermissionDenied("You may not manage billing on this account."),
    "429": HttpError(429, "Too many requests."),
    "crash": RuntimeError("boom"),
}


@pytest.fixture(scope="module")
def errors_api() -> TestClient:
    """A small API with the project's handlers, raising each kind of error on purpose."""
    api = NinjaAPI(urls_namespace="test-errors")
    install_error_handlers(api)
    for name, exc in RAISED.items():
        api.get(f"/{name}")(_raiser(exc))

    @api.get("/typed")
    def typed(request, licenses: int):
        return {"licenses": licenses}

    return TestClient(api)


@pytest.mark.parametrize(("name", "status", "body"), [
    ("invalid-input", 422, {"code": "invalid_input", "message": "Licenses must be at least 1.",
                            "params": {"licenses": 0}}),
    ("vat", 422, {"code": "invalid_vat_number", "message": "FR123 is not a valid VAT number.",
                  "params": {"vat_number": "FR123"}}),
    ("not-in-catalog", 404, {"code": "not_in_catalog", "message": "There is no plan 'gold'.",
                             "params": {"plan": "gold"}}),
    ("refused", 409, {"code": "change_refused",
                      "message": "Corporate accounts change through their advisor.", "params": {}}),
    ("downgrade", 409, {"code": "downgrade_needs_support",
                        "message": "A plan downgrade is done by our support team.", "params": {}}),
    ("404", 404, {"code": "not_found", "message": NOT_FOUND_MESSAGE, "params": {}}),
    ("403", 403, {"code": "forbidden", "message": "You may not manage billing on this account.",
                  "params": {}}),
    ("429", 429, {"code": "throttled", "message": "Too many requests.", "params": {}}),
])
def test_each_error_kind_maps_to_its_status_and_body(errors_api, name, status, body):
    response = errors_api.get(f"/{name}")
    assert response.status_code == status
    assert response.json() == body


def test_a_prorata_error_keeps_its_own_status(errors_api):
    assert ChangeRefused.http_status == 409
    assert errors_api.get("/refused").status_code == ChangeRefused.http_status


def test_a_404_never_repeats_what_was_looked_for(errors_api):
    assert "Account" not in errors_api.get("/404").json()["message"]


def test_validation_errors_name_the_field(errors_api):
    response = errors_api.get("/typed?licenses=many")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_input"
    assert "licenses" in body["message"]
    assert body["params"]["errors"][0]["field"] == "licenses"
    assert body["params"]["errors"][0]["type"] == "int_parsing"


def test_a_missing_parameter_is_a_validation_error(errors_api):
    body = errors_api.get("/typed").json()
    assert body["code"] == "invalid_input"
    assert body["params"]["errors"][0]["field"] == "licenses"


def test_an_unexpected_exception_is_a_500_in_the_same_shape_and_is_logged(errors_api, caplog):
    response = errors_api.get("/crash")
    assert response.status_code == 500
    assert response.json()["code"] == "server_error"
    assert "boom" not in response.content.decode()
    assert any(r.exc_info and "boom" in str(r.exc_info[1]) for r in caplog.records)


# The same vocabulary through the real API and its URLs.

def test_no_credentials_answers_401(world):
    response = ApiClient().get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert "Authorization: Bearer" in response.json()["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_another_accounts_id_answers_404_in_the_vocabulary(world, as_alice):
    response = as_alice.get(f"/api/v1/accounts/{world.b.pk}")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": NOT_FOUND_MESSAGE, "params": {}}
    assert as_alice.get("/api/v1/accounts/999999").json() == response.json()


def test_a_missing_role_answers_403_in_the_vocabulary(world, as_alice):
    response = as_alice.get(f"/api/v1/accounts/{world.a.pk}/members")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_a_malformed_id_answers_422_in_the_vocabulary(world, as_alice):
    response = as_alice.get("/api/v1/accounts/acme")
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"
    assert response.json()["params"]["errors"][0]["field"] == "account_id"
