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
