"""A unit of work without a database, for rule-level tests of use cases in milliseconds.

It records what a use case publishes and carries a cause and an actor like the real one. A use
case that also reads or writes tables needs the real `UnitOfWork` on PostgreSQL (integration
tests); `connection` here refuses every statement so such a test fails clearly instead of
passing by accident.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from knotenpunkt.envelope import Envelope
from knotenpunkt.events.base import Event
from knotenpunkt.uow import Actor, Cause


class _NoDatabase:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"FakeUnitOfWork has no database (connection.{name}); use an integration test")


class FakeUnitOfWork:
    """Records published events (`published`, `events`) instead of writing an outbox."""

    def __init__(
        self, source: str = "knotenpunkt/test", cause: Cause | None = None, actor: Actor | None = None
    ) -> None:
        self.source = source
        self.cause = cause or Cause()
        self.actor = actor or Actor.unknown()
        self.connection: Any = _NoDatabase()
        self.published: list[tuple[Envelope, str]] = []

    @property
    def correlation_id(self) -> str:
        return self.cause.correlation_id

    def envelope(self, event: Event, cause: Envelope | None = None) -> Envelope:
        consumed = cause or self.cause.consumed
        return Envelope(
            event=event,
            source=self.source,
            correlation_id=cause.correlation_id if cause is not None else self.cause.correlation_id,
            causation_id=str(consumed.id) if consumed is not None else None,
        )

    async def publish(self, event: Event, topic: str | None = None, *, cause: Envelope | None = None) -> Envelope:
        [envelope] = await self.publish_all([(event, cause)], topic)
        return envelope

    async def publish_all(
        self, events: Sequence[tuple[Event, Envelope | None]], topic: str | None = None
    ) -> list[Envelope]:
        envelopes = [self.envelope(event, cause) for event, cause in events]
        self.published.extend((envelope, topic or envelope.event.topic) for envelope in envelopes)
        return envelopes

    async def publish_again(self, envelope: Envelope, topic: str) -> None:
        self.published.append((envelope, topic))

    @property
    def events(self) -> list[Event]:
        return [envelope.event for envelope, _ in self.published]

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        published = len(self.published)
        try:
            yield
        except BaseException:
            del self.published[published:]
            raise
