"""The contract a partner agency builds against, generated from the event models.

    uv run python -m tools.contracts            # write docs/contracts/
    uv run python -m tools.contracts --check    # fail if docs/contracts/ differs from the code, or if the
                                                # code is not backward compatible with the released contract
    uv run python -m tools.contracts --release  # make the current contract the released one

Writes `docs/contracts/asyncapi.json` (AsyncAPI 3.0 by FastStream: the two topics of an agency,
seen from the agency) and `docs/contracts/schemas/<ce_type>.json`, one JSON Schema per event an
agency reads or writes. `docs/contracts/released/` keeps the schemas as last released; a change
that removes or retypes a field, adds a required field, or removes an event is incompatible and
needs a new version (a `.v2` type and topic) instead.
"""

from __future__ import annotations

import argparse
import functools
import json
import operator
import shutil
import sys
from pathlib import Path
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from knotenpunkt import topics
from knotenpunkt.events import (
    Event,
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
    ReferralExpired,
    ReferralReminderSent,
    ReferralSent,
    ReferralWithdrawn,
)

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / "docs" / "contracts"
SCHEMAS = CONTRACTS / "schemas"
RELEASED = CONTRACTS / "released"
ASYNCAPI_FILE = CONTRACTS / "asyncapi.json"

# What Knotenpunkt writes to an agency's referrals topic, and what the agency writes back.
AGENCY_READS: tuple[type[Event], ...] = (ReferralSent, ReferralWithdrawn, ReferralReminderSent, ReferralExpired)
AGENCY_WRITES: tuple[type[Event], ...] = (ReferralAccepted, ReferralDeclined, ReferralCompleted)
AGENCY_PLACEHOLDER = "{agency_id}"
CONTRACT_VERSION = "1.0.0"

ENVELOPE_NOTE = (
    "Every message is CloudEvents 1.0 in Kafka binary mode: the headers ce_id, ce_type, ce_source, "
    "ce_specversion, ce_time, ce_subject, correlation_id (and causation_id) carry the metadata, the "
    "body is the event as JSON, the key is the person's pseudonymous client_id. ce_type says which "
    "event a message is: "
)


def _names(events: tuple[type[Event], ...]) -> str:
    return ", ".join(f"{event.__name__} ({event.event_type})" for event in events)


def asyncapi_document() -> dict[str, Any]:
    """AsyncAPI from the agency's side: it receives on its referrals topic and sends on its answers topic."""
    broker = KafkaBroker("kafka:9092", description="The Knotenpunkt Kafka cluster (address given on joining).")
    reads = functools.reduce(operator.or_, AGENCY_READS)
    writes = functools.reduce(operator.or_, AGENCY_WRITES)

    async def on_referral(message: Any) -> None:
        """The agency's service handles what Knotenpunkt sends it."""

    # Set at runtime: FastStream documents the payload from the handler's annotation.
    on_referral.__annotations__["message"] = reads

    broker.subscriber(
        topics.agency_referrals("agency-id").replace("agency-id", AGENCY_PLACEHOLDER),
        title="referrals",
        description="Read by the agency (only the agency may read it): referrals addressed to it and what "
        f"happens to them. {ENVELOPE_NOTE}{_names(AGENCY_READS)}.",
    )(on_referral)
    broker.publisher(
        topics.agency_answers("agency-id").replace("agency-id", AGENCY_PLACEHOLDER),
        title="answers",
        description="Written by the agency (only the agency may write it): its answers. Quote referral_id, "
        f"client_id and your own agency_id as received. {ENVELOPE_NOTE}{_names(AGENCY_WRITES)}.",
        schema=writes,
    )
    specification = AsyncAPI(
        broker,
        title="Knotenpunkt partner agency contract",
        version=CONTRACT_VERSION,
        description="How a partner agency's own service receives referrals and answers them. Replace "
        f"{AGENCY_PLACEHOLDER} with your agency id from the partner directory.",
        schema_version="3.0.0",
    ).to_specification()
    return json.loads(specification.to_json())


def event_schema(event: type[Event]) -> dict[str, Any]:
    schema = event.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://knotenpunkt.example/contracts/{event.event_type}.json",
        "x-cloudevents-type": event.event_type,
        "x-direction": "agency reads" if event in AGENCY_READS else "agency writes",
        **schema,
    }


def event_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema, for every event an agency reads or writes."""
    return {f"{event.event_type}.json": event_schema(event) for event in (*AGENCY_READS, *AGENCY_WRITES)}


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def rendered() -> dict[Path, str]:
    files = {ASYNCAPI_FILE: _dump(asyncapi_document())}
    files.update({SCHEMAS / name: _dump(schema) for name, schema in event_schemas().items()})
    return files


def write() -> list[Path]:
    SCHEMAS.mkdir(parents=True, exist_ok=True)
    wanted = rendered()
    for stale_file in SCHEMAS.glob("*.json"):
        if stale_file not in wanted:
            stale_file.unlink()
    for path, text in wanted.items():
        path.write_text(text)
    return list(wanted)


def stale_files() -> list[str]:
    """Committed contract files that differ from what the code generates (or are missing/extra)."""
    wanted = rendered()
    problems = [
        str(path.relative_to(ROOT)) for path, text in wanted.items() if not path.exists() or path.read_text() != text
    ]
    problems += [
        f"{path.relative_to(ROOT)} (no longer generated)" for path in SCHEMAS.glob("*.json") if path not in wanted
    ]
    return problems


# --- backward compatibility -------------------------------------------------------------------


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _shape(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """What a field's values look like, without descriptions, defaults and enum members."""
    schema = _resolve(schema, defs)
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            return (combinator, sorted(repr(_shape(option, defs)) for option in schema[combinator]))
    if "enum" in schema:
        return ("enum", schema.get("type"))
    if schema.get("type") == "object" and "properties" in schema:
        return ("object", {name: _shape(value, defs) for name, value in sorted(schema["properties"].items())})
    if schema.get("type") == "array":
        items = schema.get("items") or schema.get("prefixItems") or {}
        return ("array", repr(_shape(items, defs)) if isinstance(items, dict) else repr(items))
    return (schema.get("type"), schema.get("format"))


def _enum_members(schema: dict[str, Any], defs: dict[str, Any]) -> set[str] | None:
    schema = _resolve(schema, defs)
    for combinator in ("anyOf", "oneOf"):
        for option in schema.get(combinator, ()):
            members = _enum_members(option, defs)
            if members is not None:
                return members
    return set(schema["enum"]) if "enum" in schema else None


def incompatibilities(released: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]]) -> list[str]:
    """Why `current` would break a partner built against `released` (empty: compatible).

    Incompatible: an event removed; a field removed or retyped; a new required field (or one that
    became required); an enum value removed; for events agencies read, an enum value added (their
    readers may reject what they do not know). Compatible: new optional fields, new events.
    """
    problems: list[str] = []
    for name, old in sorted(released.items()):
        new = current.get(name)
        if new is None:
            problems.append(f"{name}: event removed")
            continue
        old_defs, new_defs = old.get("$defs", {}), new.get("$defs", {})
        old_fields, new_fields = old.get("properties", {}), new.get("properties", {})
        agency_reads = old.get("x-direction") == "agency reads"
        for field, old_field in old_fields.items():
            if field not in new_fields:
                problems.append(f"{name}: field '{field}' removed")
                continue
            if _shape(old_field, old_defs) != _shape(new_fields[field], new_defs):
                problems.append(f"{name}: field '{field}' retyped")
                continue
            old_members, new_members = _enum_members(old_field, old_defs), _enum_members(new_fields[field], new_defs)
            if old_members is not None and new_members is not None:
                if old_members - new_members:
                    problems.append(f"{name}: field '{field}' lost values {sorted(old_members - new_members)}")
                if agency_reads and new_members - old_members:
                    problems.append(f"{name}: field '{field}' gained values {sorted(new_members - old_members)}")
        for field in sorted(set(new.get("required", ())) - set(old.get("required", ()))):
            problems.append(f"{name}: new required field '{field}'")
    return problems


def released_schemas(folder: Path = RELEASED) -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def release() -> None:
    """Make the current contract the released one (after it was published to the partners)."""
    if RELEASED.exists():
        shutil.rmtree(RELEASED)
    RELEASED.mkdir(parents=True)
    for name, schema in event_schemas().items():
        (RELEASED / name).write_text(_dump(schema))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate and check the partner agency contract.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="fail when docs/contracts/ is stale or incompatible")
    group.add_argument("--release", action="store_true", help="record the current contract as released")
    args = parser.parse_args(argv)
    if args.release:
        write()
        release()
        print(f"released {len(event_schemas())} event schemas to {RELEASED.relative_to(ROOT)}/")
        return 0
    if args.check:
        stale = stale_files()
        broken = incompatibilities(released_schemas(), event_schemas())
        for path in stale:
            print(f"stale: {path} (run `uv run python -m tools.contracts` and commit the result)", file=sys.stderr)
        for problem in broken:
            print(f"incompatible with the released contract: {problem}", file=sys.stderr)
        return 1 if stale or broken else 0
    for path in write():
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
