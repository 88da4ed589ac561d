"""The API's OpenAPI document: every error it declares is the JSON error body, every route
that needs a token says it may answer 401, enums and limits are stated where the code has
them. (schemathesis checks the document against a live API: tests/integration.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobs.states import JobState
from runner.control.api import create_app
from tests.kit.web import served
from tests.kit.worlds import build_control_world

ERROR = {"$ref": "#/components/schemas/ErrorBody"}
# /v1/ready answers 503 with its readiness report (which check failed), not an error body.
REPORTS = {("get", "/v1/ready", "503")}
PUBLIC = {("get", "/v1/health"), ("get", "/v1/ready"), ("post", "/v1/hosts/enroll")}  # no token


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    world = build_control_world(Path(tmp_path_factory.mktemp("document")))
    app = create_app(world.control.settings, context=world.control)
    with served(app) as url:
        yield url, httpx.get(f"{url}/openapi.json", timeout=10).json()
    world.close()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def test_every_error_is_the_json_error_body(api):
    _, document = api
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400 or (method, path, status) in REPORTS:
                continue
            assert response["content"] == {"application/json": {"schema": ERROR}}, (
                method,
                path,
                status,
            )
    assert "HTTPValidationError" not in document["components"]["schemas"]
    kinds = document["components"]["schemas"]["ErrorKind"]["enum"]
    assert set(kinds) == {"failed", "invalid", "conflict", "too_large", "not_found",
                          "not_allowed", "unauthenticated", "unavailable"}  # fmt: skip


def test_every_route_behind_a_token_declares_401_and_every_parameter_422(api):
    _, document = api
    for method, path, operation in operations(document):
        responses = operation["responses"]
        if (method, path) not in PUBLIC:
            assert "401" in responses, (method, path)
            assert "WWW-Authenticate" in responses["401"]["headers"], (method, path)
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in responses, (method, path)


def test_enums_and_limits_are_stated_where_the_code_has_them(api):
    _, document = api
    jobs = document["paths"]["/v1/jobs"]["get"]["parameters"]
    state = next(p for p in jobs if p["name"] == "state")
    assert document["components"]["schemas"]["JobState"]["enum"] == [s.value for s in JobState]
    assert "JobState" in str(state["schema"])
    schemas = document["components"]["schemas"]
    assert schemas["RejectBody"]["properties"]["reason"]["minLength"] == 1
    assert schemas["RejectBody"]["properties"]["reason"]["maxLength"] == 2000
    upload = document["paths"]["/v1/host/jobs/{job_id}/{kind}s/{digest}"]["put"]
    kind = next(p for p in upload["parameters"] if p["name"] == "kind")
    assert kind["schema"]["enum"] == ["output", "log", "review"]


def test_links_lead_from_a_submitted_job_to_its_status_and_files(api):
    _, document = api
    links = document["paths"]["/v1/jobs"]["post"]["responses"]["201"]["links"]
    ids = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    assert {link["operationId"] for link in links.values()} <= ids
    assert links["GetJob"]["parameters"] == {"job_id": "$response.body#/id"}


def test_an_undeclared_method_is_answered_405_with_every_method_of_the_path(api):
    url, _ = api
    response = httpx.request("DELETE", f"{url}/v1/jobs", timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"
    assert response.json()["error"]["kind"] == "invalid"


def test_a_body_that_is_not_text_is_an_invalid_request(api):
    url, _ = api
    response = httpx.post(
        f"{url}/v1/hosts/enroll",
        content=b"\xff\xfe",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["kind"] == "invalid"


def test_bounds_are_json_schema_keywords(api):
    """pydantic writes a bound it cannot place as its own ``ge``/``le``, which JSON Schema
    ignores: a client would think any number goes."""
    _, document = api
    text = str(document)
    assert "'ge':" not in text
    assert "'le':" not in text
