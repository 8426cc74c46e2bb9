"""The API's OpenAPI schema and its local documentation page (no CDN)."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.django_db


def test_the_schema_and_local_docs_are_served(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert "/api/v1/teams/{slug}/batches/{id}/results.jsonl" in paths
    result = json.loads(schema.content)["components"]["schemas"]["BatchItem"]["properties"][
        "result"]
    assert {"answer", "grounded", "abstained", "grounding", "citations"} <= set(
        result["properties"])
    docs = api.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs and "cdn" not in docs.lower()


def test_swagger_ui_assets_are_served_from_this_server(api):
    page = api.get("/api/docs/").content.decode()
    scripts = re.findall(r'src="([^"]+\.js)"', page)
    assert scripts and all(s.startswith("/static/") for s in scripts)
    for src in scripts:
        response = api.get(src)
        assert response.status_code == 200, src
