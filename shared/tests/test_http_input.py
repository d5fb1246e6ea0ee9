"""Bad HTTP input gets a clear 4xx in our error format, never a 500: a small app composed with the
shared mechanisms (`create_api`), no Kafka or database needed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import APIRouter, Header, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, Field

from knotenpunkt.http import create_api, run_command
from knotenpunkt.openapi import error_responses
from knotenpunkt.settings import ServiceSettings

MAX_BODY = 2048


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid")

    given_name: str = Field(min_length=1, max_length=200)
    note: str | None = Field(default=None, max_length=5000)
    name_variants: list[str] = Field(default_factory=list, max_length=5)


class Household(BaseModel):
    members: list[Person] = Field(default_factory=list, max_length=5)


def build_app() -> TestClient:
    app = create_api("test", max_body_bytes=MAX_BODY)
    router = APIRouter()

    async def store(request: Request, payload: object) -> object:
        # Never called in these tests: it makes the routes below "idempotent" for the OpenAPI.
        return await run_command(None, request, None, scope="scope", payload=payload)  # type: ignore[arg-type]

    @router.post("/people/{person_id}", status_code=201)
    async def create(person_id: str, person: Person, office_id: str | None = None) -> dict:
        return {"person_id": person_id, "office_id": office_id, **person.model_dump()}

    @router.get("/people/{person_id}")
    async def read(person_id: str) -> dict:
        return {"person_id": person_id}

    @router.post("/households", status_code=201)
    async def household(household: Household, request: Request) -> dict:
        if household.members and household.members[0].given_name == "never":
            return await store(request, household)  # type: ignore[return-value]
        return household.model_dump()

    @router.post("/people/{person_id}/close", responses=error_responses(410))
    async def close(person_id: str, if_match: str | None = Header(default=None, alias="If-Match")) -> dict:
        return {"closed": person_id}

    app.include_router(router)
    return TestClient(app)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    yield build_app()


def fields(answer: httpx.Response) -> dict[str, str]:
    return {error["field"]: error["code"] for error in answer.json().get("errors", [])}


def assert_our_format(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["code"] == code
    assert body["message"] and "detail" not in body
    assert body["correlation_id"] == answer.headers["X-Correlation-ID"]


# --- control characters ------------------------------------------------------------------------


def test_a_nul_in_a_body_string_is_a_field_level_422(client: TestClient) -> None:
    answer = client.post("/people/p1", json={"given_name": "Ra\x00nia"})
    assert_our_format(answer, 422, "validation_failed")
    assert fields(answer) == {"given_name": "control_character"}
    [error] = answer.json()["errors"]
    assert "U+0000" in error["message"] and "Steuerzeichen" in error["message"]
    english = client.post("/people/p1", json={"given_name": "Ra\x00nia"}, headers={"Accept-Language": "en"})
    assert "control character U+0000" in english.json()["errors"][0]["message"]


def test_nested_body_strings_are_named_by_their_path(client: TestClient) -> None:
    answer = client.post(
        "/households", json={"members": [{"given_name": "a"}, {"given_name": "b", "name_variants": ["x", "y\x00"]}]}
    )
    assert_our_format(answer, 422, "validation_failed")
    assert fields(answer) == {"members.1.name_variants.1": "control_character"}


def test_a_nul_in_a_path_or_query_parameter_is_a_field_level_422(client: TestClient) -> None:
    in_path = client.get("/people/a%00b")
    assert_our_format(in_path, 422, "validation_failed")
    assert fields(in_path) == {"person_id": "control_character"}
    in_query = client.post("/people/p1?office_id=rsc%00", json={"given_name": "Rania"})
    assert_our_format(in_query, 422, "validation_failed")
    assert fields(in_query) == {"office_id": "control_character"}


def test_line_breaks_only_in_free_text(client: TestClient) -> None:
    # A note (allowed longer than 200 characters) is free text: tabs and line breaks are fine.
    note = client.post("/people/p1", json={"given_name": "Rania", "note": "first line\r\nsecond\tline"})
    assert note.status_code == 201, note.text
    assert note.json()["note"] == "first line\r\nsecond\tline"
    # A name is one line; other controls are refused in free text too.
    refused = client.post("/people/p1", json={"given_name": "Ra\nnia", "note": "bell \x07 and DEL \x7f"})
    assert fields(refused) == {"given_name": "control_character", "note": "control_character"}
    # C1 controls (U+0080-U+009F) are refused; ordinary non-ASCII text is not.
    assert fields(client.post("/people/p1", json={"given_name": "x\x85y"})) == {"given_name": "control_character"}
    assert client.post("/people/p1", json={"given_name": "Ğülşen Öztürk-Ñúñez 李"}).status_code == 201
    # Path and query parameters are identifiers: one line.
    assert fields(client.get("/people/a%0Ab")) == {"person_id": "control_character"}


def test_an_unpaired_surrogate_is_refused_not_a_500(client: TestClient) -> None:
    answer = client.post(
        "/people/p1", content=b'{"given_name": "a\\ud800b"}', headers={"Content-Type": "application/json"}
    )
    assert_our_format(answer, 422, "validation_failed")
    assert fields(answer) == {"given_name": "invalid_character"}


# --- body size ---------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_by_its_declared_length(client: TestClient) -> None:
    answer = client.post("/people/p1", json={"given_name": "x", "note": "y" * MAX_BODY})
    assert_our_format(answer, 413, "body_too_large")
    assert str(MAX_BODY) in answer.json()["message"]


def test_a_body_over_the_limit_is_413_while_streaming_without_a_length(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"given_name": "x", "note": "'
        for _ in range(100):
            yield b"y" * 100
        yield b'"}'

    answer = client.post("/people/p1", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in {k.lower() for k in answer.request.headers}
    assert_our_format(answer, 413, "body_too_large")


def test_a_body_under_the_limit_passes(client: TestClient) -> None:
    answer = client.post("/people/p1", json={"given_name": "x", "note": "y" * (MAX_BODY - 100)})
    assert answer.status_code == 201


def test_the_limit_is_a_setting_of_one_mebibyte_by_default() -> None:
    assert ServiceSettings(service_name="x").max_body_bytes == 1024 * 1024
    assert ServiceSettings(service_name="x", max_body_bytes=5000).max_body_bytes == 5000


# --- malformed requests, unknown routes, wrong methods -----------------------------------------


def test_malformed_json_is_answered_in_our_format(client: TestClient) -> None:
    answer = client.post("/people/p1", content=b'{"given_name": ', headers={"Content-Type": "application/json"})
    assert_our_format(answer, 422, "validation_failed")
    assert fields(answer) == {"body": "json_invalid"}


def test_a_body_that_is_not_utf8_is_400_in_our_format(client: TestClient) -> None:
    answer = client.post("/people/p1", content=b'{"given_name": "\xff"}', headers={"Content-Type": "application/json"})
    assert_our_format(answer, 400, "bad_request")


def test_an_unknown_route_is_404_in_our_format(client: TestClient) -> None:
    answer = client.get("/no/such/route", headers={"Accept-Language": "en"})
    assert_our_format(answer, 404, "unknown_route")
    assert answer.json()["message"] == "This address does not exist in the API: GET /no/such/route"


def test_a_wrong_method_is_405_in_our_format_with_allow(client: TestClient) -> None:
    answer = client.delete("/people/p1")
    assert_our_format(answer, 405, "method_not_allowed")
    # Every method of the path, not only those of the first route Starlette found.
    assert answer.headers["Allow"] == "GET, POST"
    assert "GET, POST" in answer.json()["message"]


# --- OpenAPI and docs --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict:
    return client.get("/openapi.json").json()


ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def error_statuses(operation: dict) -> set[int]:
    statuses = set()
    for status, response in operation["responses"].items():
        if int(status) >= 400:
            assert response["content"]["application/json"]["schema"] == ERROR_REF, status
            assert response["description"]
            statuses.add(int(status))
    return statuses


def test_openapi_declares_our_error_body_for_every_error_status(document: dict) -> None:
    schema = document["components"]["schemas"]["ErrorBody"]
    assert set(schema["required"]) == {"code", "message", "correlation_id"}
    assert "errors" in schema["properties"]
    assert "HTTPValidationError" not in json.dumps(document)
    paths = document["paths"]
    assert error_statuses(paths["/people/{person_id}"]["get"]) == {404, 413, 422, 503}
    assert error_statuses(paths["/people/{person_id}"]["post"]) == {400, 404, 409, 413, 422, 503}
    assert error_statuses(paths["/households"]["post"]) == {400, 409, 413, 422, 503}
    # If-Match: 409 (stale) and 428 (missing); 410 declared by the route with the helper.
    assert error_statuses(paths["/people/{person_id}/close"]["post"]) == {404, 409, 410, 413, 422, 428, 503}


def test_openapi_declares_the_headers_where_they_are_used(document: dict) -> None:
    def headers(path: str, method: str) -> set[str]:
        parameters = document["paths"][path][method].get("parameters", [])
        return {p["name"] for p in parameters if p["in"] == "header"}

    assert headers("/households", "post") == {"Idempotency-Key"}  # calls `run_command` through a helper
    assert headers("/people/{person_id}", "post") == set()
    assert headers("/people/{person_id}/close", "post") == {"If-Match"}


def test_openapi_has_an_example_for_every_request_body(document: dict) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                media = operation["requestBody"]["content"]["application/json"]
                assert "example" in media, (method, path)
    example = document["paths"]["/people/{person_id}"]["post"]["requestBody"]["content"]["application/json"]
    assert Person.model_validate(example["example"])


def test_docs_load_swagger_ui_from_the_service_not_a_cdn(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert not re.search(r"https?://", page.text), page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    assert any(asset.endswith("swagger-ui.css") for asset in assets)
    for asset in assets:
        loaded = client.get(asset)
        assert loaded.status_code == 200 and loaded.content, asset
    assert "'/openapi.json'" in page.text


@pytest.mark.parametrize(
    "offered",
    [
        "abc\r\nX-Injected: 1",  # a second log line or header
        "name Müller",  # spaces and letters outside the safe set: not an id, maybe a name
        '{"json": true}',
        "x" * 101,
        "",
    ],
)
def test_a_correlation_id_is_taken_only_in_a_safe_format_else_a_fresh_one_is_made(
    client: TestClient, offered: str
) -> None:
    answer = client.get("/people/p1", headers={"X-Correlation-ID": offered.encode("utf-8")})
    returned = answer.headers["X-Correlation-ID"]
    assert returned != offered and len(returned) == 36  # a fresh UUID, which is what gets logged


def test_a_safe_correlation_id_is_passed_on() -> None:
    answer = build_app().get("/people/p1", headers={"X-Correlation-ID": "web-3f2a.9:17_x"})
    assert answer.headers["X-Correlation-ID"] == "web-3f2a.9:17_x"
