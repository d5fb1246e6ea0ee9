"""Every request schema of every service bounds its strings and lists: no 50 MB person record.

Request models are those that refuse unknown fields (extra="forbid"); answers do not. Codes
that are not free strings (enums, dates, UUIDs) are bounded by their format.
"""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import cases.schemas
import intake.schemas
import referrals.schemas
from intake.schemas import Registration

FORMATTED = {"date", "date-time", "uuid"}


def request_models(module: ModuleType) -> list[type[BaseModel]]:
    return [
        model
        for _, model in inspect.getmembers(module, inspect.isclass)
        if issubclass(model, BaseModel)
        and model.__module__ == module.__name__
        and model.model_config.get("extra") == "forbid"
    ]


def unbounded(schema: dict[str, Any], definitions: dict[str, Any], path: str, seen: set[str]) -> list[str]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        return unbounded(definitions[name], definitions, path, seen | {name})
    problems: list[str] = []
    for option in schema.get("anyOf", []) + schema.get("allOf", []):
        problems += unbounded(option, definitions, path, seen)
    kind = schema.get("type")
    if (
        kind == "string"
        and "enum" not in schema
        and schema.get("format") not in FORMATTED
        and "maxLength" not in schema
    ):
        problems.append(f"{path}: string without maxLength")
    if kind == "array":
        if "maxItems" not in schema:
            problems.append(f"{path}: list without maxItems")
        problems += unbounded(schema.get("items", {}), definitions, f"{path}[]", seen)
    for name, field in schema.get("properties", {}).items():
        problems += unbounded(field, definitions, f"{path}.{name}", seen)
    return problems


MODELS = [model for module in (intake.schemas, cases.schemas, referrals.schemas) for model in request_models(module)]


# The bodies themselves: not base classes of other requests, not parts nested in one.
_NESTED = {name for model in MODELS for name in model.model_json_schema().get("$defs", {})}
BODIES = [
    model
    for model in MODELS
    if model.__name__ not in _NESTED and not any(other is not model and issubclass(other, model) for other in MODELS)
]


def test_the_request_models_are_found() -> None:
    names = {model.__name__ for model in MODELS}
    assert {"Registration", "Correction", "ConsentInput", "ConsultationInput", "TopicInput", "ReferralInput"} <= names


@pytest.mark.parametrize("model", MODELS, ids=lambda model: f"{model.__module__}.{model.__name__}")
def test_every_string_and_list_of_a_request_has_an_upper_bound(model: type[BaseModel]) -> None:
    schema = model.model_json_schema()
    assert unbounded(schema, schema.get("$defs", {}), model.__name__, set()) == []


@pytest.mark.parametrize("model", BODIES, ids=lambda model: f"{model.__module__}.{model.__name__}")
def test_every_request_body_has_a_valid_example(model: type[BaseModel]) -> None:
    examples = model.model_json_schema().get("examples")
    assert examples, "an example for the OpenAPI document"
    model.model_validate(examples[0])


def error_types(model: type[BaseModel], data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(data)
    return {".".join(str(part) for part in error["loc"]): error["type"] for error in refused.value.errors()}


def test_a_registration_with_a_thousand_name_variants_or_household_members_is_refused() -> None:
    person = {"family_name": "Haddad", "given_name": "Rania", "birth_year": 1990, "office_id": "rsc-hamborn"}
    assert Registration.model_validate(person)
    assert error_types(Registration, {**person, "name_variants": ["Hadad"] * 1000}) == {"name_variants": "too_long"}
    assert error_types(Registration, {**person, "name_variants": ["x" * 5_000_000]}) == {
        "name_variants.0": "string_too_long"
    }
    members = [{"relation": "child", "count": 1}] * 1000
    assert error_types(Registration, {**person, "household_members": members}) == {"household_members": "too_long"}
