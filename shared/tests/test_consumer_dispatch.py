"""How an event consumer hands events to its handlers, without Kafka or PostgreSQL: dispatch by
annotation, runs for batch handlers in the batch's order, redeliveries skipped."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from knotenpunkt.consumer import Batch, HandlerProjection, dispatch_table, handled_event_types
from knotenpunkt.envelope import Envelope
from knotenpunkt.events import ClientErased, ClientRegistered, ClientsMerged
from knotenpunkt.testing.events import registered
from knotenpunkt.uow import Actor, UnitOfWork, UnitsOfWork


def merged() -> Envelope:
    event = ClientsMerged(client_id=uuid.uuid4(), merged_client_id=uuid.uuid4(), merged_at=datetime.now(UTC))
    return Envelope(event=event, source="test")


class ProcessedEvents:
    """The one statement the consumer sends per batch: which event ids are new."""

    def __init__(self, seen_before: set[uuid.UUID] = frozenset()) -> None:  # type: ignore[assignment]
        self.seen_before = set(seen_before)

    async def fetchval(self, sql: str, consumer: str, ids: list[uuid.UUID]) -> list[uuid.UUID]:
        assert "processed_events" in sql
        fresh = [event_id for event_id in dict.fromkeys(ids) if event_id not in self.seen_before]
        self.seen_before.update(fresh)
        return fresh


def projection(*handlers: Any) -> HandlerProjection:
    units = UnitsOfWork(database=None, source="knotenpunkt/test")  # type: ignore[arg-type]
    return HandlerProjection("group", units, dispatch_table(handlers), Actor.service("test"))


async def test_batch_handlers_get_runs_of_consecutive_events_and_the_order_is_kept() -> None:
    calls: list[tuple[str, list[uuid.UUID]]] = []

    async def on_client_registered(batch: Batch[ClientRegistered], uow: UnitOfWork) -> None:
        calls.append(("registered", [envelope.id for envelope in batch.envelopes]))

    async def on_clients_merged(event: ClientsMerged, uow: UnitOfWork) -> None:
        assert uow.cause.consumed is not None and uow.cause.consumed.event is event
        calls.append(("merged", [uow.cause.consumed.id]))

    a, b, m, c = registered(), registered(), merged(), registered()
    await projection(on_client_registered, on_clients_merged).apply(ProcessedEvents(), [a, b, m, c])

    # A merge between registrations splits the run: a person's events keep their order.
    assert calls == [("registered", [a.id, b.id]), ("merged", [m.id]), ("registered", [c.id])]


async def test_redelivered_events_and_copies_within_a_batch_are_applied_once() -> None:
    applied: list[uuid.UUID] = []

    async def on_client_registered(event: ClientRegistered, uow: UnitOfWork) -> None:
        applied.append(uow.cause.consumed.id)  # type: ignore[union-attr]

    old, new = registered(), registered()
    await projection(on_client_registered).apply(ProcessedEvents(seen_before={old.id}), [old, new, new])

    assert applied == [new.id]


async def test_events_without_a_handler_are_skipped() -> None:
    applied: list[uuid.UUID] = []

    async def on_client_registered(event: ClientRegistered, uow: UnitOfWork) -> None:
        applied.append(event.client_id)

    a = registered()
    await projection(on_client_registered).apply(ProcessedEvents(), [merged(), a])

    assert applied == [a.event.client_id]


def test_the_annotation_names_what_a_handler_takes() -> None:
    async def either(event: ClientErased | ClientsMerged, uow: UnitOfWork) -> None: ...

    async def many(batch: Batch[ClientRegistered], uow: UnitOfWork) -> None: ...

    async def untyped(event, uow) -> None: ...  # type: ignore[no-untyped-def]

    assert handled_event_types(either) == (ClientErased, ClientsMerged)
    assert handled_event_types(many) == (ClientRegistered,)
    with pytest.raises(TypeError):
        handled_event_types(untyped)
    with pytest.raises(ValueError, match="two handlers for ClientErased"):
        dispatch_table([either, either])
