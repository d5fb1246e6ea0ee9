"""The unit of work every use case takes instead of a connection.

A use case (an HTTP command or a consumer's `on_<event>`) gets one `UnitOfWork`: the open
transaction, `publish(event)` that writes the event to the outbox with its envelope built from
the cause (the HTTP request's correlation id, or the consumed event as causation), and who is
acting. Everything it does commits together or not at all; nothing is published outside it.

The service's composition root creates one `UnitsOfWork` (ServiceRuntime does); entrypoints
ask it for a unit of work, use cases never open transactions themselves. Tests that check a
rule without SQL use `knotenpunkt.testing.FakeUnitOfWork`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg

from knotenpunkt.db import Database
from knotenpunkt.envelope import Envelope
from knotenpunkt.events.base import Event
from knotenpunkt.outbox import add_many_to_outbox


@dataclass(frozen=True)
class Actor:
    """Who is acting: a signed-in person, a partner agency, or a service itself.

    Built from the bearer token by `knotenpunkt.identity` (HTTP) or as the service itself
    (consumers, periodic jobs). `subject` is the staff id of a person, the agency's client id for
    an agency's software, the service's name for a service. `via` names the service that relayed
    a person's request (cases asking intake for the person the case manager opened).
    """

    kind: str  # "staff" | "agency" | "service" | "unknown"
    subject: str
    roles: frozenset[str] = frozenset()
    offices: frozenset[str] = frozenset()
    agency_id: str | None = None
    via: str | None = None

    @property
    def office_id(self) -> str | None:
        """The person's office when there is exactly one (most staff work at one office)."""
        return next(iter(self.offices)) if len(self.offices) == 1 else None

    @property
    def staff_id(self) -> str | None:
        return self.subject if self.kind in ("staff", "agency") else None

    @classmethod
    def service(cls, name: str) -> Actor:
        return cls(kind="service", subject=name, roles=frozenset({"service"}))

    @classmethod
    def unknown(cls) -> Actor:
        return cls(kind="unknown", subject="anonymous")

    @classmethod
    def staff(cls, staff_id: str, *roles: str, offices: tuple[str, ...] = (), agency_id: str | None = None) -> Actor:
        """A person with roles (tests and tools; HTTP builds it from the token)."""
        kind = "agency" if agency_id else "staff"
        return cls(kind=kind, subject=staff_id, roles=frozenset(roles), offices=frozenset(offices), agency_id=agency_id)


@dataclass(frozen=True)
class Cause:
    """Why a unit of work runs: the correlation id it continues and, for a consumed event, that
    event (the causation of every event published in the unit of work)."""

    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    consumed: Envelope | None = None

    @classmethod
    def of(cls, envelope: Envelope) -> Cause:
        return cls(correlation_id=envelope.correlation_id, consumed=envelope)


class Publisher(Protocol):
    """What a use case needs to emit events: the unit of work (real or fake) provides it."""

    async def publish(self, event: Event, topic: str | None = None) -> Envelope: ...


class UnitOfWork:
    """One transaction of one use case, with the outbox and the actor."""

    def __init__(self, connection: asyncpg.Connection, source: str, cause: Cause, actor: Actor) -> None:
        self.connection = connection
        self.source = source
        self.cause = cause
        self.actor = actor
        # What this unit of work published, with the topic: (envelope, topic).
        self.published: list[tuple[Envelope, str]] = []

    @property
    def correlation_id(self) -> str:
        return self.cause.correlation_id

    @property
    def events(self) -> list[Event]:
        return [envelope.event for envelope, _ in self.published]

    def envelope(self, event: Event, cause: Envelope | None = None) -> Envelope:
        """The envelope `publish` would write: correlation id and causation from the cause (or
        from `cause`, the consumed event this one follows from, in a batch handler)."""
        consumed = cause or self.cause.consumed
        return Envelope(
            event=event,
            source=self.source,
            correlation_id=cause.correlation_id if cause is not None else self.cause.correlation_id,
            causation_id=str(consumed.id) if consumed is not None else None,
        )

    async def publish(self, event: Event, topic: str | None = None, *, cause: Envelope | None = None) -> Envelope:
        """Write the event to the outbox (to its own topic, or `topic`); returns its envelope.

        The same envelope may be published to a second topic by passing it to `publish_again`.
        """
        [envelope] = await self.publish_all([(event, cause)], topic)
        return envelope

    async def publish_all(
        self, events: Sequence[tuple[Event, Envelope | None]], topic: str | None = None
    ) -> list[Envelope]:
        """Publish several events, each with its cause (None: the unit of work's), in one round trip."""
        envelopes = [self.envelope(event, cause) for event, cause in events]
        await self._write([(envelope, topic or envelope.event.topic) for envelope in envelopes])
        return envelopes

    async def publish_again(self, envelope: Envelope, topic: str) -> None:
        """The same event (same id) on one more topic, e.g. a referral on the agency's topic."""
        await self._write([(envelope, topic)])

    async def _write(self, items: list[tuple[Envelope, str]]) -> None:
        await add_many_to_outbox(self.connection, items)
        self.published.extend(items)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested transaction: a failure inside rolls back only what was done inside."""
        published = len(self.published)
        try:
            async with self._nested():
                yield
        except BaseException:
            del self.published[published:]
            raise

    def _nested(self) -> AbstractAsyncContextManager[Any]:
        return self.connection.transaction()


class UnitsOfWork:
    """The service's factory of units of work (one per use case), made in the composition root."""

    def __init__(self, database: Database, source: str) -> None:
        self.database = database
        self.source = source

    @asynccontextmanager
    async def begin(self, cause: Cause | None = None, actor: Actor | None = None) -> AsyncIterator[UnitOfWork]:
        """A new transaction; it commits when the block ends without an exception."""
        async with self.database.transaction() as connection:
            yield self.within(connection, cause or Cause(), actor or Actor.unknown())

    def within(self, connection: asyncpg.Connection, cause: Cause, actor: Actor) -> UnitOfWork:
        """A unit of work inside a transaction the caller holds (a consumer's batch)."""
        return UnitOfWork(connection, self.source, cause, actor)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection for a query (no outbox, no transaction of its own)."""
        async with self.database.connection() as connection:
            yield connection
