"""Kafka plumbing written once: the idempotent producer, topic creation, the dead-letter topic."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError, TopicAlreadyExistsError

from knotenpunkt.logging import get_logger
from knotenpunkt.topics import DEAD_LETTER, TopicSpec

log = get_logger("knotenpunkt.kafka")

# The largest record our producers send: the broker's default `message.max.bytes` (1 MiB + 12).
MAX_RECORD_BYTES = 1_048_576
# Room for the dead-letter headers and the record's framing when a copy must be cut short.
_DEAD_LETTER_HEADROOM = 16_384


class Producer:
    """The service's idempotent producer: acks=all, no duplicates from retries, per-partition
    order kept. Created in the composition root, connected in the lifespan (aiokafka needs a
    running event loop to create it)."""

    def __init__(self, bootstrap: str, client_id: str) -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            request_timeout_ms=30_000,
            max_request_size=MAX_RECORD_BYTES,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    @property
    def kafka(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("producer not started")
        return self._producer


async def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec], timeout_s: float = 60) -> None:
    """Create the topics that are missing. Existing topics are left as they are."""
    wanted = {spec.name: spec for spec in specs}
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [
                NewTopic(
                    name=spec.name,
                    num_partitions=spec.partitions,
                    replication_factor=1 if _single_broker(admin) else 3,
                    topic_configs={"retention.ms": str(spec.retention_ms)},
                )
                for name, spec in wanted.items()
                if name not in existing
            ]
            if missing:
                try:
                    await admin.create_topics(missing)
                except TopicAlreadyExistsError:
                    pass  # another service created it first: fine
                log.info("topics created", topics=[topic.name for topic in missing])
            await _wait_until_led(bootstrap, list(wanted), deadline)
            return
        except KafkaConnectionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(1)
        finally:
            await admin.close()


async def _wait_until_led(bootstrap: str, names: list[str], deadline: float) -> None:
    """Wait until every partition's leader answers for it.

    Metadata names a leader for a new topic before that broker has taken the leadership up; an
    idempotent producer that writes in that moment was seen to hang for its whole request
    timeout (30 s) on NotLeaderForPartition. ListOffsets is answered by the leader itself, so
    once it succeeds for every partition, producing works.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=5_000)
    await consumer.start()
    try:
        while True:
            try:
                await consumer._client.force_metadata_update()  # see topics created a moment ago
                partitions = [TopicPartition(n, p) for n in names for p in consumer.partitions_for_topic(n) or ()]
                if len(partitions) >= len(names):
                    await consumer.end_offsets(partitions)
                    return
            except KafkaError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise KafkaTimeoutError(f"topics not ready for writing: {names}")
            await asyncio.sleep(0.2)
    finally:
        await consumer.stop()


def _single_broker(admin: AIOKafkaAdminClient) -> bool:
    return len(admin._client.cluster.brokers()) < 3


class DeadLetterPublisher:
    """Sends a message that cannot be applied to the dead-letter topic, with reason and origin.

    The original key, value and headers are kept byte for byte, so the message can be replayed
    once the cause is fixed. The reason never includes field values (personal data).
    """

    def __init__(self, producer: Producer, consumer_group: str, topic: str = DEAD_LETTER) -> None:
        self._producer = producer
        self._consumer_group = consumer_group
        self._topic = topic

    async def send(self, record: ConsumerRecord, reason: str, error: BaseException | None = None) -> None:
        headers = [(name, value) for name, value in (record.headers or ()) if not name.startswith("dlq_")]
        extra = {
            "dlq_reason": reason[:2000],
            "dlq_origin_topic": record.topic,
            "dlq_origin_partition": str(record.partition),
            "dlq_origin_offset": str(record.offset),
            "dlq_consumer_group": self._consumer_group,
            "dlq_failed_at": datetime.now(UTC).isoformat(),
        }
        if error is not None:
            extra["dlq_error_type"] = type(error).__name__
            # Only the frames, not the exception text: that may quote message content.
            extra["dlq_traceback"] = "".join(traceback.format_tb(error.__traceback__))[-4000:]
        value = record.value
        size = len(value or b"") + len(record.key or b"") + sum(len(n) + len(v or b"") for n, v in headers)
        if size + _DEAD_LETTER_HEADROOM > MAX_RECORD_BYTES and value is not None:
            # The copy (same bytes plus our headers) would be over the producer's limit, and a
            # dead letter that cannot be written would stall the partition for ever. Keep the
            # beginning, and say how large the original was and where it is (its topic keeps it).
            budget = max(0, MAX_RECORD_BYTES - _DEAD_LETTER_HEADROOM - (size - len(value)))
            extra["dlq_truncated"] = "true"
            extra["dlq_original_size"] = str(len(value))
            value = value[:budget]
        headers.extend((name, text.encode()) for name, text in extra.items())
        await self._producer.kafka.send_and_wait(self._topic, value=value, key=record.key, headers=headers)
        log.warning(
            "message dead-lettered",
            reason=reason,
            origin_topic=record.topic,
            origin_partition=record.partition,
            origin_offset=record.offset,
        )
