"""The base of every event: frozen pydantic models keyed by the pseudonymous client id."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Event(BaseModel):
    """A fact that happened, named in the past tense.

    Readers are tolerant: unknown fields are ignored, so a producer may add optional fields
    without breaking any consumer (see docs/decisions/0003-event-contracts.md).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    # The CloudEvents `type` of this event; the registry maps it back to the model.
    event_type: ClassVar[str]
    # The topic this event is published on (the one place that decides it).
    topic: ClassVar[str]

    client_id: UUID = Field(
        description=(
            "Pseudonymous id of the person this event is about. Random, assigned by intake, "
            "never derived from personal data. Also the Kafka message key, so every event "
            "about one person is ordered within a partition."
        )
    )


_REGISTRY: dict[str, type[Event]] = {}


def register(model: type[Event]) -> type[Event]:
    """Class decorator: make the event known to consumers by its CloudEvents type."""
    if model.event_type in _REGISTRY:
        raise ValueError(f"event type {model.event_type} registered twice")
    _REGISTRY[model.event_type] = model
    return model


def event_model(event_type: str) -> type[Event] | None:
    return _REGISTRY.get(event_type)


def all_event_models() -> dict[str, type[Event]]:
    return dict(_REGISTRY)
