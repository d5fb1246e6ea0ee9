"""Reading and writing topics directly in tests, to assert on what really is on the broker."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CoordinatorLoadInProgressError, GroupCoordinatorNotAvailableError

from knotenpunkt.envelope import Envelope
from knotenpunkt.kafka import ensure_topics
from knotenpunkt.topics import TopicSpec


async def create_topic(bootstrap: str, name: str, partitions: int = 3) -> str:
    await ensure_topics(bootstrap, [TopicSpec(name, partitions)])
    return name


async def read_topic(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    """Every record on the topic right now, from offset 0 to the current end of each partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(timeout_ms=1000)
            for part in batch.values():
                records.extend(part)
        return records
    finally:
        await consumer.stop()


async def publish(bootstrap: str, topic: str, messages: list[Envelope | tuple[bytes, bytes, list]]) -> None:
    """Publish envelopes (or raw key, value, headers triples) in order, waiting for each ack."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for message in messages:
            if isinstance(message, Envelope):
                await producer.send_and_wait(topic, message.body(), key=message.key.encode(), headers=message.headers())
            else:
                key, value, headers = message
                await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def committed_total(bootstrap: str, group_id: str, topic: str) -> int:
    """Sum of the group's committed offsets over the topic's partitions (0 where none)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id)
        return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)
    except (GroupCoordinatorNotAvailableError, CoordinatorLoadInProgressError):
        return 0  # a fresh broker creates its offsets topic on the first group: nothing committed yet
    finally:
        await admin.close()


async def group_lag(bootstrap: str, group_id: str) -> int:
    """Messages on the group's assigned topics that it has not committed yet (0 = caught up)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group_id)
        topics = {tp.topic for tp in committed}
        await consumer._client.force_metadata_update()  # see topics created meanwhile
        partitions = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        if not partitions:
            return 0
        ends = await consumer.end_offsets(partitions)
        return sum(max(0, end - (committed[tp].offset if tp in committed else 0)) for tp, end in ends.items())
    finally:
        await consumer.stop()
        await admin.close()
