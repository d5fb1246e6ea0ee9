"""Idempotent, at-least-once event consumption on top of FastStream, written once.

For every message:
1. decode the CloudEvents envelope; a message that cannot be decoded goes to the dead-letter
   topic at once (retrying cannot fix it);
2. in ONE transaction: record (consumer, event id) and apply the handler's effect (including
   any outgoing events, via the outbox); an event seen before changes nothing;
3. only then commit the offset (FastStream's AckPolicy.MANUAL; its default would commit first).

Transient failures (database unreachable) are retried with exponential backoff up to a bound,
then dead-lettered. If even the dead-letter topic cannot be written, the consumer seeks back to
the message and tries again after a pause: it never commits past a message it has not secured.
Messages are processed one at a time per subscriber, so FastStream's commit of "all consumed
positions" never covers a message still in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import asyncpg
import structlog
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from knotenpunkt.db import Database
from knotenpunkt.envelope import Envelope, InvalidEvent, decode
from knotenpunkt.events.base import Event
from knotenpunkt.kafka import DeadLetterPublisher
from knotenpunkt.logging import get_logger
from knotenpunkt.metrics import CONSUMER_LAG, EVENTS_HANDLED, HANDLER_SECONDS

EventHandler = Callable[[asyncpg.Connection, Envelope], Awaitable[None]]

log = get_logger("knotenpunkt.consumer")

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # Admin or crash shutdown, "the database system is starting up": the server comes back.
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)


class Rejected(Exception):
    """The event is well-formed but can never be applied (e.g. an answer from the wrong agency).

    Raised by a handler; the event goes to the dead-letter topic with this reason and its
    transaction is rolled back, so it changes nothing.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 10.0

    def delay(self, attempt: int) -> float:
        return min(self.initial_backoff_s * (2 ** (attempt - 1)), self.max_backoff_s)


async def mark_processed(connection: asyncpg.Connection, consumer: str, envelope: Envelope) -> bool:
    """Record the event as processed; False if it was processed before (a redelivery)."""
    inserted = await connection.fetchval(
        "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
        consumer,
        envelope.id,
    )
    return bool(inserted)


class EventConsumer:
    """One consumer group of a service: dispatches events by type to use-case handlers."""

    def __init__(
        self,
        group_id: str,
        database: Database,
        dead_letters: DeadLetterPublisher,
        handlers: Mapping[type[Event], EventHandler],
        retry: RetryPolicy,
    ) -> None:
        self.group_id = group_id
        self._database = database
        self._dead_letters = dead_letters
        self._handlers = dict(handlers)
        self._retry = retry

    def subscribe(self, broker: KafkaBroker, *topics: str, pattern: str | None = None) -> None:
        options = {
            "group_id": self.group_id,
            # A new group starts at the beginning of the history, not at its end.
            "auto_offset_reset": "earliest",
            "ack_policy": AckPolicy.MANUAL,
            "title": f"{self.group_id}:{','.join(topics) or pattern}",
        }
        if pattern is not None:
            options["pattern"] = pattern

        async def on_event(message: KafkaMessage) -> None:
            await self.process(message)

        broker.subscriber(*topics, **options)(on_event)

    async def process(self, message: KafkaMessage) -> None:
        record = message.raw_message
        started = time.perf_counter()
        try:
            envelope = decode(record.headers or (), record.value, record.topic)
        except InvalidEvent as invalid:
            await self._secure(message, invalid.reason)
            self._measure(message, "undecodable", "dead_lettered", started)
            return
        handler = self._handlers.get(type(envelope.event))
        if handler is None:
            # A valid event this consumer has no use for: skip it, it is not an error.
            await self._commit(message)
            self._measure(message, envelope.type, "skipped", started)
            return
        with structlog.contextvars.bound_contextvars(
            correlation_id=envelope.correlation_id,
            event_id=str(envelope.id),
            event_type=envelope.type,
        ):
            outcome = await self._apply(message, envelope, handler)
        self._measure(message, envelope.type, outcome, started)

    def _measure(self, message: KafkaMessage, event_type: str, outcome: str, started: float) -> None:
        record = message.raw_message
        EVENTS_HANDLED.labels(self.group_id, event_type, outcome).inc()
        if outcome in ("applied", "duplicate"):
            HANDLER_SECONDS.labels(self.group_id, event_type).observe(time.perf_counter() - started)
        consumer = getattr(message, "consumer", None)
        highwater = getattr(consumer, "highwater", None)
        if highwater is not None:
            end = highwater(TopicPartition(record.topic, record.partition))
            if end is not None:
                lag = max(0, end - record.offset - 1)
                CONSUMER_LAG.labels(self.group_id, record.topic, str(record.partition)).set(lag)

    async def _apply(self, message: KafkaMessage, envelope: Envelope, handler: EventHandler) -> str:
        """Apply the event once; returns the outcome for the metrics."""
        outcome = "applied"
        for attempt in range(1, self._retry.max_attempts + 1):
            try:
                async with self._database.transaction() as connection:
                    if await mark_processed(connection, self.group_id, envelope):
                        await handler(connection, envelope)
                    else:
                        outcome = "duplicate"
                        log.info("duplicate event ignored")
            except Rejected as rejected:
                await self._secure(message, rejected.reason, rejected)
                return "dead_lettered"
            except TRANSIENT_ERRORS as error:
                if attempt == self._retry.max_attempts:
                    reason = f"gave up after {attempt} attempts: {type(error).__name__}"
                    await self._secure(message, reason, error)
                    return "dead_lettered"
                delay = self._retry.delay(attempt)
                log.warning(
                    "transient failure, retrying", error=type(error).__name__, attempt=attempt, retry_in_s=delay
                )
                await asyncio.sleep(delay)
            except Exception as error:  # a bug or a data error: retrying will not help
                log.exception("handler failed")
                reason = f"handler failed: {type(error).__name__}"
                await self._secure(message, reason, error)
                return "dead_lettered"
            else:
                await self._commit(message)
                return outcome
        return outcome

    async def _secure(self, message: KafkaMessage, reason: str, error: BaseException | None = None) -> None:
        """Dead-letter, then commit; if the dead-letter topic is unreachable, rewind and pause."""
        try:
            await self._dead_letters.send(message.raw_message, reason, error)
        except KafkaError as error:
            log.error("dead-letter topic unreachable; will redeliver", error=type(error).__name__)
            await asyncio.sleep(self._retry.max_backoff_s)
            await message.nack()
            return
        await self._commit(message)

    async def _commit(self, message: KafkaMessage) -> None:
        try:
            await message.ack()
        except KafkaError as error:
            # The effect is durable and idempotent: a redelivery after a rebalance is harmless.
            log.warning("offset commit failed; the event may be redelivered", error=type(error).__name__)
