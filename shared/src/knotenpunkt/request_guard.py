"""Control characters in HTTP input, refused once for every service.

A NUL in a string used to reach PostgreSQL, which refuses it, and the caller got a 500. Every
service's routes depend on `refuse_control_characters` (installed app-wide by
`knotenpunkt.http.create_api`), so bad characters are answered with a field-level 422 in our
error format before any handler runs.

The rule:
- Never allowed, anywhere: NUL and the other C0 controls except TAB, LF and CR (U+0000-U+001F),
  DEL (U+007F), the C1 controls (U+0080-U+009F), and unpaired surrogates (JSON escapes such as
  "\\ud800" that are no character at all; PostgreSQL cannot store them either).
- Path and query parameters are identifiers, codes and filters: one line, so TAB, LF and CR
  are refused there too.
- In a JSON body, TAB, LF and CR are allowed only in free text: a string the request schema
  allows more than `SINGLE_LINE_MAX` characters (notes, descriptions). Shorter strings, and
  strings without a declared maximum, are names, codes or identifiers and must be one line.
  Object keys count as identifiers.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from enum import Enum
from typing import Any

import annotated_types
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from pydantic.fields import FieldInfo

# Strings the schema allows at most this many characters are names and identifiers (one line).
SINGLE_LINE_MAX = 200
# One answer names at most this many fields: enough to fix the input, not a megabyte of errors.
MAX_REPORTED = 20

_NEVER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAKS = re.compile(r"[\t\n\r]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")

Location = tuple[str | int, ...]


def character_problem(value: str, single_line: bool) -> tuple[str, str] | None:
    """The message code and the offending character (as U+XXXX) of a string that breaks the rule."""
    found = _NEVER.search(value) or (_LINE_BREAKS.search(value) if single_line else None)
    if found:
        return "control_character", f"U+{ord(found.group()):04X}"
    found = _SURROGATE.search(value)
    if found:
        return "invalid_character", f"U+{ord(found.group()):04X}"
    return None


async def refuse_control_characters(request: Request) -> None:
    """A FastAPI dependency: 422 naming every path, query and body field with a bad character."""
    errors: list[dict[str, Any]] = []

    def check(location: Location, value: str, single_line: bool) -> None:
        problem = character_problem(value, single_line)
        if problem and len(errors) < MAX_REPORTED:
            code, character = problem
            errors.append({"type": code, "loc": location, "msg": code, "input": None, "ctx": {"character": character}})

    for name, value in request.path_params.items():
        if isinstance(value, str):
            check(("path", _printable(name)), value, single_line=True)
    for name, value in request.query_params.multi_items():
        # A bad parameter name is refused like a bad value; the answer names it readably.
        check(("query", _printable(name)), name, single_line=True)
        check(("query", _printable(name)), value, single_line=True)
    body_type = _body_type(request)
    if body_type is not None and await request.body():
        try:
            body = await request.json()  # parsed and cached by FastAPI already for a JSON body
        except ValueError:
            body = None  # not JSON: FastAPI answers that itself
        for location, value, is_key in _strings(body):
            single_line = is_key or _single_line(body_type, location)
            check(("body", *location), value, single_line)
    if errors:
        raise RequestValidationError(errors)


def _printable(name: str) -> str:
    return _NEVER.sub("\ufffd", _LINE_BREAKS.sub("\ufffd", _SURROGATE.sub("\ufffd", name)))


def _body_type(request: Request) -> Any:
    """The declared type of the route's JSON body, or None when the route takes no body."""
    route = request.scope.get("route")
    body_field = getattr(route, "body_field", None)
    if body_field is None:
        return None
    field_info = getattr(body_field, "field_info", None)
    return getattr(field_info, "annotation", None) or Any


def _strings(body: Any) -> Iterator[tuple[Location, str, bool]]:
    """Every string in a decoded JSON document with its location; iterative, so deep nesting
    cannot exhaust the stack. The flag tells an object key from a value."""
    stack: list[tuple[Location, Any]] = [((), body)]
    while stack:
        location, value = stack.pop()
        if isinstance(value, str):
            yield location, value, False
        elif isinstance(value, dict):
            for key in value:
                yield (*location, key), key, True
            # Pushed in reverse, so the errors come in the document's order.
            stack.extend(((*location, key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*location, index), item) for index, item in reversed(list(enumerate(value))))


def _single_line(body_type: Any, location: Location) -> bool:
    """Whether the string at `location` of a body of `body_type` is a name or identifier: its
    declared maximum length is at most SINGLE_LINE_MAX, or it has none."""
    annotation, constraints = _unwrap(body_type, [])
    for part in location:
        if isinstance(part, str) and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part) or _by_alias(annotation, part)
            if field is None:
                return True
            annotation, constraints = _unwrap(field.annotation, list(field.metadata))
        elif isinstance(part, int) and typing.get_origin(annotation) in (list, tuple, set, frozenset):
            arguments = typing.get_args(annotation)
            annotation, constraints = _unwrap(arguments[0] if arguments else Any, [])
        elif isinstance(part, str) and typing.get_origin(annotation) is dict:
            arguments = typing.get_args(annotation)
            annotation, constraints = _unwrap(arguments[1] if len(arguments) == 2 else Any, [])
        else:
            return True
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return True
    limits = [item.max_length for item in constraints if isinstance(item, annotated_types.MaxLen)]
    return not limits or min(limits) <= SINGLE_LINE_MAX


def _by_alias(model: type[BaseModel], name: str) -> FieldInfo | None:
    return next((field for field in model.model_fields.values() if field.alias == name), None)


def _unwrap(annotation: Any, constraints: list[Any]) -> tuple[Any, list[Any]]:
    """The annotation without Optional/Annotated wrappers, and the constraints met on the way."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            for item in annotation.__metadata__:
                if isinstance(item, FieldInfo):
                    constraints.extend(item.metadata)
                elif isinstance(item, annotated_types.GroupedMetadata):  # e.g. pydantic's StringConstraints
                    constraints.extend(item)
                else:
                    constraints.append(item)
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [option for option in typing.get_args(annotation) if option is not type(None)]
            if len(options) != 1:
                return annotation, constraints
            annotation = options[0]
        else:
            return annotation, constraints
