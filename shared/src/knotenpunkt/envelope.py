"""CloudEvents 1.0 in Kafka binary mode: metadata in headers, the event model as JSON body.

Pure contract code (pydantic only), so a partner agency can use it without our services.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from pydantic import ValidationError

from knotenpunkt.events.base import Event, event_model

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"

Headers = Sequence[tuple[str, bytes]]


class InvalidEvent(Exception):
    """A message that can never be applied: not JSON, unknown type, or a contract violation."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Envelope:
    """An event with its CloudEvents metadata and tracing ids."""

    event: Event
    id: UUID = field(default_factory=uuid.uuid4)
    source: str = "knotenpunkt"
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    causation_id: str | None = None
    # Where a consumed event was read from (None for one being produced).
    origin_topic: str | None = None

    @property
    def type(self) -> str:
        return self.event.event_type

    @property
    def key(self) -> str:
        return str(self.event.client_id)

    def caused(self, event: Event, source: str) -> Envelope:
        """A follow-up event: same correlation id, this event as its cause."""
        return Envelope(
            event=event,
            source=source,
            correlation_id=self.correlation_id,
            causation_id=str(self.id),
        )

    def headers(self) -> list[tuple[str, bytes]]:
        headers = [
            ("ce_id", str(self.id)),
            ("ce_type", self.type),
            ("ce_source", self.source),
            ("ce_specversion", SPEC_VERSION),
            ("ce_time", self.time.isoformat()),
            ("ce_subject", self.key),
            ("content-type", CONTENT_TYPE),
            ("correlation_id", self.correlation_id),
        ]
        if self.causation_id:
            headers.append(("causation_id", self.causation_id))
        return [(name, value.encode()) for name, value in headers]

    def body(self) -> bytes:
        return self.event.model_dump_json().encode()


def header_map(headers: Iterable[tuple[str, bytes | None]]) -> dict[str, str]:
    decoded: dict[str, str] = {}
    for name, value in headers:
        if value is None:
            continue
        try:
            decoded[name] = value.decode()
        except UnicodeDecodeError:
            continue
    return decoded


def decode(headers: Iterable[tuple[str, bytes | None]], body: bytes | None, topic: str | None = None) -> Envelope:
    """Parse a Kafka record into an envelope, or raise InvalidEvent with a reason.

    The reason never repeats field values: a message may carry personal data.
    """
    meta = header_map(headers)
    event_type = meta.get("ce_type")
    if not event_type:
        raise InvalidEvent("missing header ce_type")
    model = event_model(event_type)
    if model is None:
        raise InvalidEvent(f"unknown event type {event_type!r}")
    try:
        event_id = UUID(meta.get("ce_id", ""))
    except ValueError:
        raise InvalidEvent("header ce_id is not a UUID") from None
    try:
        time = datetime.fromisoformat(meta["ce_time"]) if "ce_time" in meta else datetime.now(UTC)
    except ValueError:
        raise InvalidEvent("header ce_time is not an ISO 8601 timestamp") from None
    if body is None:
        raise InvalidEvent("empty body")
    try:
        # pydantic parses and validates in one pass (no intermediate dicts): the consumers'
        # hottest line.
        event = model.model_validate_json(body)
    except ValidationError as error:
        errors = error.errors(include_input=False, include_url=False)
        if errors and errors[0]["type"] == "json_invalid":
            raise InvalidEvent(f"body is not valid JSON: {errors[0]['msg']}") from None
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'body'}: {item['msg']}" for item in errors
        )
        raise InvalidEvent(f"{event_type} does not match its contract: {problems}") from None
    return Envelope(
        event=event,
        id=event_id,
        source=meta.get("ce_source", "unknown"),
        time=time,
        correlation_id=meta.get("correlation_id") or str(event_id),
        causation_id=meta.get("causation_id"),
        origin_topic=topic,
    )
