"""The OpenAPI documents say what the services really answer, written once for every service.

`install_openapi` post-processes FastAPI's generated document:
- every error answer is declared with our error body (`ErrorBody`), not FastAPI's
  `{"detail": ...}`: 413, 422 and 503 on every operation; 400 where there is a request body (a
  body that cannot be read); 404 where the path names a resource; 409 and 428 where If-Match is
  a parameter; 409 on a change to a named resource or an idempotent command; 401 and 403 where an
  Authorization header is a parameter; plus every status a route declares itself (use
  `error_responses(410, ...)` in `responses=` for statuses no rule above can know);
- the Idempotency-Key header on every operation that stores its answer under that key (its
  endpoint calls `knotenpunkt.http.run_command`, directly or through a helper
  of its router), or that declares it with `openapi_extra=idempotent_operation()`;
- an example for every JSON request body: the model's own (`json_schema_extra`), else one made
  from the schema.

`install_docs` serves Swagger UI from the `swagger-ui-bundle-v2` package, so /docs works
without a CDN (the machines the services run on may reach none).
"""

from __future__ import annotations

import inspect
import json
import types
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any

import fastapi.routing
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

IDEMPOTENCY_HEADER = "Idempotency-Key"
IF_MATCH_HEADER = "If-Match"
DOCS_ASSETS_PATH = "/docs/assets"
_COMPONENTS = "#/components/schemas/"
_STATE_CHANGING = frozenset({"post", "put", "patch", "delete"})
# Functions that store a command's answer under its Idempotency-Key (knotenpunkt.http).
_IDEMPOTENT_CALLS = frozenset({"run_command"})


class FieldErrorBody(BaseModel):
    field: str = Field(
        description="The field: its path in the body (`given_name`, `household_members.0.count`; `body` for "
        "the whole body), or the name of the path or query parameter or header."
    )
    code: str = Field(description="Machine-readable problem, e.g. `missing`, `string_too_long`, `control_character`.")
    message: str = Field(description="The problem in the caller's language (Accept-Language; German by default).")


class ErrorBody(BaseModel):
    """Every error answer of every Knotenpunkt service has this shape."""

    model_config = ConfigDict(
        # Some answers add keys, e.g. the `candidates` of a possible duplicate.
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "code": "validation_failed",
                    "message": "Die Eingaben sind unvollständig oder ungültig.",
                    "errors": [{"field": "given_name", "code": "missing", "message": "Dieses Feld ist erforderlich."}],
                    "correlation_id": "6f1c2a8e-3b0d-4c53-9a57-1d2e3f4a5b6c",
                }
            ]
        },
    )

    code: str = Field(description="Machine-readable reason, e.g. `validation_failed`, `not_found`, `case_closed`.")
    message: str = Field(description="What happened and what to do, in the caller's language.")
    errors: list[FieldErrorBody] | None = Field(default=None, description="The fields at fault (422).")
    correlation_id: str = Field(description="Also in the X-Correlation-ID header and in every log line of the request.")


STATUS_DESCRIPTIONS: dict[int, str] = {
    400: "The request cannot be read (e.g. the body is not UTF-8).",
    401: "Credentials are missing or wrong.",
    403: "The credentials do not allow this.",
    404: "Not found: the resource named in the path does not exist (`not_found`).",
    409: "The current state does not allow this, or the If-Match version is stale.",
    410: "The record's content was erased on the person's request.",
    413: "The request body is larger than the service accepts (setting KP_MAX_BODY_BYTES).",
    422: "The input is invalid; `errors` names each field (also control characters such as NUL).",
    428: "The change must name the version it is based on in If-Match.",
    503: "The database or another service is unreachable right now; try again later.",
}

IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 200},
    "description": "Any unique string, e.g. a UUID. A repeat with the same key and body gets the stored answer "
    "(header `Idempotent-Replayed: true`) and changes nothing; the same key with another body is refused (422).",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a route for error statuses no generic rule can know (e.g. 410)."""
    return {
        status: {"model": ErrorBody, "description": STATUS_DESCRIPTIONS.get(status, "Error")} for status in statuses
    }


def idempotent_operation() -> dict[str, Any]:
    """`openapi_extra=` of a route that takes an Idempotency-Key but is not recognised by itself."""
    return {"parameters": [dict(IDEMPOTENCY_PARAMETER)]}


def install_openapi(app: FastAPI, secured: Callable[[str], bool] | None = None) -> None:
    """The app's /openapi.json declares our error body, the headers and request examples, and
    (with `secured`: a path is open when it returns True) the bearer token on every operation
    that is not open."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(generate(), app, is_open=secured)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "An access token of the Knotenpunkt realm in Keycloak (audience `knotenpunkt-api`): a person "
    "signs in through the web app (authorization code with PKCE), a service or an agency's software uses its "
    "client credentials. A service relaying a person's request also sends that person's token in X-On-Behalf-Of.",
}


def document(schema: dict[str, Any], app: FastAPI, is_open: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """Add the error contract, the Idempotency-Key header, request examples and (with `is_open`)
    the security scheme to `schema`."""
    if is_open is not None:
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = SECURITY_SCHEME
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    _, definitions = models_json_schema([(ErrorBody, "validation")], ref_template=_COMPONENTS + "{model}")
    components.update(definitions.get("$defs", {}))
    for path, method, endpoint in _operations(app):
        operation = schema.get("paths", {}).get(path, {}).get(method)
        if operation is None:
            continue
        if _calls_idempotent(endpoint):
            parameters = operation.setdefault("parameters", [])
            if not any(p.get("in") == "header" and p["name"].lower() == "idempotency-key" for p in parameters):
                parameters.append(dict(IDEMPOTENCY_PARAMETER))
        secured = is_open is not None and not is_open(path)
        if secured:
            operation["security"] = [{"bearer": []}]
        _declare_errors(operation, method, secured)
        _add_example(operation, components)
    _drop_unused(schema, ("HTTPValidationError", "ValidationError"))
    return schema


def iter_routes(app: FastAPI) -> Iterator[Any]:
    """Every route of the app, also those inside included routers (with their full path)."""
    # Newer FastAPI keeps included routers as such; older versions flatten them into app.routes.
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    yield from iterate(app.routes) if iterate is not None else app.routes


def _operations(app: FastAPI) -> Iterator[tuple[str, str, Callable[..., Any]]]:
    """(path, method, endpoint) of every documented route."""
    for route in iter_routes(app):
        path, methods = getattr(route, "path_format", None), getattr(route, "methods", None)
        endpoint = getattr(route, "endpoint", None)
        if path and methods and endpoint is not None and getattr(route, "include_in_schema", True):
            for method in methods:
                yield path, method.lower(), endpoint


def _declare_errors(operation: dict[str, Any], method: str, secured: bool = False) -> None:
    parameters = operation.get("parameters", [])
    headers = {p["name"].lower() for p in parameters if p.get("in") == "header"}
    has_path_parameters = any(p.get("in") == "path" for p in parameters)
    statuses = {413, 422, 503}
    if "requestBody" in operation:
        statuses.add(400)
    if has_path_parameters:
        statuses.add(404)
    if IF_MATCH_HEADER.lower() in headers:
        statuses |= {409, 428}
    if method in _STATE_CHANGING and (has_path_parameters or IDEMPOTENCY_HEADER.lower() in headers):
        statuses.add(409)
    if "authorization" in headers or secured:
        statuses |= {401, 403}
    responses = operation.setdefault("responses", {})
    statuses |= {int(status) for status in responses if status.isdigit() and int(status) >= 400}
    error_content = {"application/json": {"schema": {"$ref": _COMPONENTS + "ErrorBody"}}}
    for status in sorted(statuses):
        response = responses.setdefault(str(status), {})
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        if not schema or schema.get("$ref") == _COMPONENTS + "HTTPValidationError":
            response["content"] = error_content
        if not response.get("description") or response["description"] == "Validation Error":
            response["description"] = STATUS_DESCRIPTIONS.get(status, "Error")
    operation["responses"] = dict(sorted(responses.items()))


def _calls_idempotent(function: Callable[..., Any], depth: int = 3) -> bool:
    """Whether the endpoint stores its answer under an Idempotency-Key: its code, or the code of
    a helper it closes over (a router's `change(...)`), calls `run_command`."""
    function = inspect.unwrap(function)
    code = getattr(function, "__code__", None)
    if code is None:
        return False
    if _IDEMPOTENT_CALLS & _names(code):
        return True
    if depth == 0:
        return False
    for cell in getattr(function, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if inspect.isfunction(value) and value is not function and _calls_idempotent(value, depth - 1):
            return True
    return False


def _names(code: types.CodeType) -> set[str]:
    """Global and attribute names a function's code (and the functions defined in it) uses."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _names(constant)
    return names


def _add_example(operation: dict[str, Any], components: dict[str, Any]) -> None:
    media = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if media is None or "example" in media or "examples" in media:
        return
    media["example"] = _example(media.get("schema", {}), components, depth=0)


def _example(schema: dict[str, Any], components: dict[str, Any], depth: int) -> Any:
    """A plausible value for `schema`: its own example or default, else one made from its type."""
    if "$ref" in schema:
        return _example(components.get(schema["$ref"].removeprefix(_COMPONENTS), {}), components, depth)
    if schema.get("examples"):
        return schema["examples"][0]
    if "example" in schema:
        return schema["example"]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    options = schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf")
    if options:
        usable = [option for option in options if option.get("type") != "null"]
        return _example(usable[0], components, depth) if usable else None
    if depth > 8:  # a recursive schema: stop somewhere
        return None
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        return {name: _example(properties[name], components, depth + 1) for name in required if name in properties}
    if kind == "array":
        return [_example(schema.get("items", {}), components, depth + 1)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if kind == "string":
        return {
            "date": date.today().isoformat(),
            "date-time": datetime.now().replace(microsecond=0).isoformat(),
            "uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
            "email": "name@example.org",
        }.get(schema.get("format", ""), "string")
    return None


def _drop_unused(schema: dict[str, Any], names: tuple[str, ...]) -> None:
    """Remove FastAPI's own error models once nothing refers to them any more."""
    components = schema.get("components", {}).get("schemas", {})
    for name in names:
        if name not in components:
            continue
        rest = {key: value for key, value in components.items() if key != name}
        text = json.dumps({"paths": schema.get("paths", {}), "components": rest})
        if f'"{_COMPONENTS}{name}"' not in text:
            del components[name]


def install_docs(app: FastAPI, title: str | None = None) -> None:
    """/docs: Swagger UI with its JavaScript and CSS served by the service itself."""
    # Imported here: only services need it, the published contract package (base install) does not.
    from swagger_ui_bundle import swagger_ui_path

    app.mount(DOCS_ASSETS_PATH, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{title or app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_PATH}/favicon-32x32.png",
            # Swagger UI would otherwise ask validator.swagger.io about the document.
            swagger_ui_parameters={"validatorUrl": None},
        )
