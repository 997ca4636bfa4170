"""The OpenAPI document and the docs page (whose assets come from this server, not a CDN)."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db

ASSET = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)=[\"']([^\"']+)[\"']", re.IGNORECASE)


def test_the_openapi_document_is_public_and_lists_the_endpoints(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "Prorata API"
    paths = document["paths"]
    assert set(paths["/api/v1/me"]) == {"get"}
    assert set(paths["/api/v1/accounts"]) == {"get"}
    assert set(paths["/api/v1/accounts/{account_id}"]) == {"get"}
    assert set(paths["/api/v1/accounts/{account_id}/members"]) == {"get"}
    assert set(paths["/api/v1/tokens"]) == {"get"}
    assert set(paths["/api/v1/tokens/{token_id}"]) == {"delete"}


def test_the_openapi_document_describes_auth_and_errors(client):
    document = client.get("/api/v1/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["BearerToken"] == {"type": "http", "scheme": "bearer"}
    assert schemes["SessionCookie"]["in"] == "cookie"
    members = document["paths"]["/api/v1/accounts/{account_id}/members"]["get"]
    assert {"200", "401", "403", "404", "422"} <= set(members["responses"])
    error = document["components"]["schemas"]["ErrorOut"]
    assert set(error["properties"]) == {"code", "message", "params"}


def test_the_docs_page_loads_its_assets_from_this_server(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assets = ASSET.findall(html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    assert any(a.endswith("swagger-ui.css") for a in assets)
    for asset in assets:
        assert not asset.startswith(("http://", "https://", "//")), asset
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")) is not None, f"{asset} is not shipped"
        assert client.get(asset).status_code == 200, f"{asset} is not served"
    assert "http://" not in html and "https://" not in html
    assert "/api/v1/openapi.json" in html


def test_the_api_root_points_to_the_docs(client):
    response = client.get("/api/v1/")
    assert response.status_code == 200
    assert response.json() == {"openapi": "/api/v1/openapi.json", "docs": "/api/v1/docs"}


# --- the operator API (issue 17) -------------------------------------------------------------------

def _operator_operations(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "operator" in operation.get("tags", []):
                yield path, method, operation


def _schema(document, node):
    ref = node.get("$ref")
    return document["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else node


def test_every_operator_route_is_documented_with_examples(client):
    document = client.get("/api/v1/openapi.json").json()
    operations = list(_operator_operations(document))
    paths = {path for path, _, _ in operations}
    assert len(operations) >= 20 and "/api/v1/customers" in paths
    assert "/api/v1/customers/{customer_id}/orders" in paths
    schemes = document["components"]["securitySchemes"]
    assert schemes["OperatorKeyAuth"] == {"type": "http", "scheme": "bearer"}
    problems = []
    for path, method, operation in operations:
        where = f"{method.upper()} {path}"
        if operation.get("security") != [{"OperatorKeyAuth": []}]:
            problems.append(f"{where}: not (only) the operator key")
        if not operation.get("summary"):
            problems.append(f"{where}: no summary")
        success = [s for s in operation["responses"] if s.startswith("2")]
        if not success:
            problems.append(f"{where}: no success response")
        for status in success:
            content = operation["responses"][status].get("content", {})
            if not any("example" in media for media in content.values()):
                problems.append(f"{where}: {status} has no example")
            media = content.get("application/json")
            if media and "schema" in media and "example" in media:
                schema = _schema(document, media["schema"])
                missing = set(schema.get("required", [])) - set(media["example"])
                extra = set(media["example"]) - set(schema.get("properties", {}))
                if missing or extra:
                    problems.append(f"{where}: example lacks {missing} / has unknown {extra}")
        if "401" not in operation["responses"]:
            problems.append(f"{where}: 401 undocumented")
        if method in ("post", "patch", "put", "delete"):
            if "403" not in operation["responses"]:
                problems.append(f"{where}: the read-only key's 403 is undocumented")
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and "example" not in body:
                problems.append(f"{where}: its body has no example")
            headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            if not path.endswith("/quote") and "Idempotency-Key" not in headers:
                problems.append(f"{where}: no Idempotency-Key header")
    assert not problems, "\n".join(problems)


def test_lists_share_one_envelope_in_the_document(client):
    document = client.get("/api/v1/openapi.json").json()
    lists = ["/api/v1/customers", "/api/v1/customers/{customer_id}/invoices",
             "/api/v1/customers/{customer_id}/credit-notes",
             "/api/v1/customers/{customer_id}/payments",
             "/api/v1/customers/{customer_id}/ledger",
             "/api/v1/customers/{customer_id}/subscriptions",
             "/api/v1/accounts/{account_id}/invoices", "/api/v1/accounts/{account_id}/transactions"]
    for path in lists:
        media = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        schema = _schema(document, media["schema"])
        assert set(schema["properties"]) == {"data", "has_more", "next_cursor"}, path
        parameters = {p["name"] for p in document["paths"][path]["get"]["parameters"]}
        assert {"cursor", "limit"} <= parameters, path


def test_every_route_answers_an_example(client):
    """Issue 17: every route of the document (the customer's as well as the operator's) shows
    an example of its success answer, and of its JSON body when it takes one; each example was
    checked against its schema when the routes were imported (``documented``)."""
    document = client.get("/api/v1/openapi.json").json()
    problems, seen = [], 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            seen += 1
            where = f"{method.upper()} {path}"
            for status, answer in operation["responses"].items():
                content = answer.get("content", {})
                if status.startswith("2") and content and not any(
                        "example" in media for media in content.values()):
                    problems.append(f"{where}: {status} has no example")
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and "example" not in body:
                problems.append(f"{where}: its body has no example")
    assert seen >= 50
    assert not problems, "\n".join(problems)
