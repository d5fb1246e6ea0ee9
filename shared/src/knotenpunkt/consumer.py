"""Event consumers of a service: typed `on_<event>(event, uow)` handlers, applied in batches,
exactly once in effect, written once.

A service registers its handlers, each a plain async function whose first parameter's
annotation names the event type(s) it handles:

    async def on_client_registered(event: ClientRegistered, uow: UnitOfWork) -> None: ...

    runtime.consume(topics.CLIENTS, on_client_registered, on_clients_merged)

They run on `knotenpunkt.projection.ProjectionConsumer`, the batch machinery of the read
models (decision 0010): our code decodes every record from its bytes, so nothing is dropped
before it is seen (an undecodable record is dead-lettered with its reason and counted); a
fetched batch per partition is applied in ONE transaction together with

- the `(consumer, event_id)` records in `processed_events` (the same event published twice, at
  two offsets, is applied once), and
- the partitions' next offsets in `consumer_offsets` (the truth the consumer seeks to after a
  rebalance; Kafka's committed offsets only mirror them for lag monitoring).

If the batch fails, it is applied again event by event under savepoints: an event whose
handler raises `Rejected` or a domain error, or fails with a bug, is dead-lettered alone; one
that keeps failing transiently is retried with backoff up to the bound, then dead-lettered. A
database that is down stops the consumer until it is back; no event is skipped for that.
Per-key order holds: a key lives on one partition, and a partition's records are applied in
offset order.
"""

from __future__ import annotations

import inspect
import time
import types
import typing
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg

from knotenpunkt.envelope import Envelope
from knotenpunkt.events.base import Event
from knotenpunkt.kafka import DeadLetterPublisher
from knotenpunkt.metrics import EVENTS_HANDLED, HANDLER_SECONDS
from knotenpunkt.projection import EventFailed, ProjectionConsumer, Rejected
from knotenpunkt.retry import TRANSIENT_ERRORS, Backoff
from knotenpunkt.uow import Actor, Cause, UnitOfWork, UnitsOfWork

__all__ = ["TRANSIENT_ERRORS", "Batch", "EventConsumer", "EventHandler", "Rejected", "handled_event_types"]

EventHandler = Callable[[Any, UnitOfWork], Awaitable[None]]

EventT = TypeVar("EventT", bound=Event)


@dataclass(frozen=True)
class Batch(Generic[EventT]):
    """Consecutive events of one type from a fetched batch, for a handler that applies many at
    once (`on_x(batch: Batch[X], uow)`) with set-based SQL: one statement for hundreds of events
    instead of several round trips each. The envelopes are in offset order per partition; a
    handler publishes follow-up events with `uow.publish_all([(event, envelope), ...])` so each
    names its own cause."""

    envelopes: Sequence[Envelope]

    @property
    def events(self) -> list[EventT]:
        return [envelope.event for envelope in self.envelopes]  # type: ignore[misc]

    def __len__(self) -> int:
        return len(self.envelopes)


OFFSETS_TABLE = "consumer_offsets"


def takes_batches(handler: EventHandler) -> bool:
    """Whether the handler takes a `Batch[X]` rather than one event."""
    parameters = list(inspect.signature(handler).parameters)
    return bool(parameters) and typing.get_origin(typing.get_type_hints(handler).get(parameters[0])) is Batch


def handled_event_types(handler: EventHandler) -> tuple[type[Event], ...]:
    """The event types a handler takes, from its first parameter's annotation (`A | B` allowed,
    `Batch[A]` for a batch handler)."""
    parameters = list(inspect.signature(handler).parameters)
    if len(parameters) != 2:
        raise TypeError(f"{handler.__qualname__} must take (event, uow)")
    annotation = typing.get_type_hints(handler).get(parameters[0])
    if typing.get_origin(annotation) is Batch:
        annotation = typing.get_args(annotation)[0]
    members = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    if typing.get_origin(annotation) is typing.Union:
        members = typing.get_args(annotation)
    if not members or not all(isinstance(member, type) and issubclass(member, Event) for member in members):
        raise TypeError(f"{handler.__qualname__}: annotate the event parameter with the event class(es) it handles")
    return tuple(members)


def dispatch_table(handlers: Sequence[EventHandler]) -> dict[type[Event], EventHandler]:
    table: dict[type[Event], EventHandler] = {}
    for handler in handlers:
        for event_type in handled_event_types(handler):
            if event_type in table:
                raise ValueError(f"two handlers for {event_type.__name__} in one consumer")
            table[event_type] = handler
    return table


class HandlerProjection:
    """Applies events to a service's own tables through its handlers (the Projection protocol)."""

    def __init__(
        self, name: str, units: UnitsOfWork, handlers: Mapping[type[Event], EventHandler], actor: Actor
    ) -> None:
        self.name = name
        self._units = units
        self._handlers = dict(handlers)
        self._batch_handlers = {handler for handler in self._handlers.values() if takes_batches(handler)}
        self._actor = actor
        # Outcomes of the transaction in flight; counted once it commits (a retried batch must
        # not count twice).
        self._outcomes: Counter[tuple[str, str]] = Counter()
        self._seconds: list[tuple[str, float]] = []

    async def prepare(self, connection: asyncpg.Connection) -> None:
        self._outcomes.clear()
        self._seconds.clear()

    async def apply(self, connection: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
        wanted = []
        for envelope in envelopes:
            handler = self._handlers.get(type(envelope.event))
            if handler is None:
                # A valid event this consumer has no use for: skipped, not an error.
                self._outcomes[(envelope.type, "skipped")] += 1
            else:
                wanted.append((envelope, handler))
        if not wanted:
            return
        # One statement records the whole batch; what was recorded before is a redelivery.
        fresh = set(
            await connection.fetchval(
                "WITH inserted AS (INSERT INTO processed_events (consumer, event_id) "
                "SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING RETURNING event_id) "
                "SELECT coalesce(array_agg(event_id), '{}') FROM inserted",
                self.name,
                [envelope.id for envelope, _ in wanted],
            )
        )
        runs: list[tuple[EventHandler, list[Envelope]]] = []
        for envelope, handler in wanted:
            if envelope.id not in fresh:
                self._outcomes[(envelope.type, "duplicate")] += 1
                continue
            fresh.discard(envelope.id)  # a second copy in the same batch is a duplicate too
            # A batch handler takes the run of consecutive events it handles at once; the order
            # of the batch is kept, so a person's events still apply in the order they happened.
            if runs and runs[-1][0] is handler and handler in self._batch_handlers:
                runs[-1][1].append(envelope)
            else:
                runs.append((handler, [envelope]))
        for handler, envelopes_of_run in runs:
            started = time.perf_counter()
            if handler in self._batch_handlers:
                # Which event of the run failed is unknown: the consumer then applies them one
                # by one (a Batch of one each), so the error is not attributed to any of them.
                await handler(Batch(envelopes_of_run), self._units.within(connection, Cause(), self._actor))
            else:
                [envelope] = envelopes_of_run
                try:
                    await handler(envelope.event, self._units.within(connection, Cause.of(envelope), self._actor))
                except Exception as error:
                    raise EventFailed(envelope) from error
            seconds = (time.perf_counter() - started) / len(envelopes_of_run)
            for envelope in envelopes_of_run:
                self._seconds.append((envelope.type, seconds))
                self._outcomes[(envelope.type, "applied")] += 1

    def committed(self) -> None:
        for (event_type, outcome), count in self._outcomes.items():
            EVENTS_HANDLED.labels(self.name, event_type, outcome).inc(count)
        for event_type, seconds in self._seconds:
            HANDLER_SECONDS.labels(self.name, event_type).observe(seconds)
        self._outcomes.clear()
        self._seconds.clear()


class EventConsumer(ProjectionConsumer):
    """One consumer of a service's group: its handlers on some topics (or a topic pattern)."""

    def __init__(
        self,
        *,
        group_id: str,
        units: UnitsOfWork,
        bootstrap: str,
        dead_letters: DeadLetterPublisher,
        handlers: Sequence[EventHandler],
        topics: Sequence[str] = (),
        pattern: str | None = None,
        backoff: Backoff | None = None,
        max_batch: int = 500,
        stall_after_s: float = 300.0,
        client_id: str | None = None,
    ) -> None:
        self.handlers = dispatch_table(handlers)
        super().__init__(
            projection=HandlerProjection(group_id, units, self.handlers, Actor.service(group_id)),
            database=units.database,
            bootstrap=bootstrap,
            topics=topics,
            offsets_table=OFFSETS_TABLE,
            dead_letters=dead_letters,
            group_id=group_id,
            client_id=client_id or group_id,
            max_batch=max_batch,
            backoff=backoff or Backoff(max_attempts=12),
            pattern=pattern,
            stall_after_s=stall_after_s,
            # Before decision 10 the handlers' positions lived only in Kafka.
            seed_from_group_offsets=True,
        )
