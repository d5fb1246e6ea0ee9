"""The ceiling every consumer benchmark compares against: a raw aiokafka batch consumer that
fetches and decodes the records (the same `knotenpunkt.envelope.decode` our consumers use) and
does nothing else."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from knotenpunkt.envelope import InvalidEvent, decode


@dataclass
class Rate:
    events: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def partitions_of(consumer: AIOKafkaConsumer, names: Sequence[str]) -> list[TopicPartition]:
    await consumer._client.force_metadata_update()
    return [TopicPartition(name, p) for name in names for p in sorted(consumer.partitions_for_topic(name) or ())]


async def end_total(bootstrap: str, names: Sequence[str]) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return sum((await consumer.end_offsets(await partitions_of(consumer, names))).values())
    finally:
        await consumer.stop()


async def raw_decode(bootstrap: str, names: Sequence[str], batch: int = 5000) -> Rate:
    """The ceiling: fetch and decode every record of the topics, nothing else."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, names)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        total = sum((await consumer.end_offsets(partitions)).values())
        decoded = 0
        started = time.perf_counter()
        while decoded < total:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=batch)
            for records in fetched.values():
                for record in records:
                    try:
                        decode(record.headers or (), record.value, record.topic)
                    except InvalidEvent:
                        pass
                    decoded += 1
        return Rate(decoded, time.perf_counter() - started)
    finally:
        await consumer.stop()
