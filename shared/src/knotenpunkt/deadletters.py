"""Look at the dead-letter topic and replay messages once their cause is fixed.

    python -m knotenpunkt.deadletters list   [--bootstrap HOST:PORT] [--group G] [--origin-topic T]
    python -m knotenpunkt.deadletters replay [--bootstrap HOST:PORT] [--group G] [--origin-topic T] [--event-id ID]

Replaying publishes the original key, value and headers (without the dlq_* ones) back to the
origin topic. Every consumer group reads it again; groups that had applied it already ignore
it (idempotent by ce_id), the group that dead-lettered it applies it now.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from knotenpunkt.envelope import header_map
from knotenpunkt.topics import DEAD_LETTER


@dataclass(frozen=True)
class DeadLetter:
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @property
    def meta(self) -> dict[str, str]:
        return header_map(self.headers)

    def matches(self, group: str | None, origin_topic: str | None, event_id: str | None) -> bool:
        meta = self.meta
        return (
            (group is None or meta.get("dlq_consumer_group") == group)
            and (origin_topic is None or meta.get("dlq_origin_topic") == origin_topic)
            and (event_id is None or meta.get("ce_id") == event_id)
        )


async def read_dead_letters(bootstrap: str, topic: str = DEAD_LETTER) -> list[DeadLetter]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # the topic may be newer than the first metadata
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        letters: list[DeadLetter] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                letters.extend(
                    DeadLetter(r.offset, r.key, r.value, tuple(r.headers or ()))
                    for r in records
                    if r.offset < ends[TopicPartition(r.topic, r.partition)]
                )
        return letters
    finally:
        await consumer.stop()


async def replay(
    bootstrap: str,
    group: str | None = None,
    origin_topic: str | None = None,
    event_id: str | None = None,
    topic: str = DEAD_LETTER,
) -> int:
    """Republish the matching dead letters to their origin topics; returns how many.

    A truncated copy (the original was too large to copy whole) is not replayed: its value is
    incomplete. The original is still on its origin topic at the offset the copy names."""
    chosen = []
    for letter in await read_dead_letters(bootstrap, topic):
        if not letter.matches(group, origin_topic, event_id):
            continue
        if letter.meta.get("dlq_truncated") == "true":
            print(
                f"skipped dead letter {letter.offset}: truncated copy of "
                f"{letter.meta.get('dlq_origin_topic')}@{letter.meta.get('dlq_origin_partition')}:"
                f"{letter.meta.get('dlq_origin_offset')} ({letter.meta.get('dlq_original_size')} bytes)"
            )
            continue
        chosen.append(letter)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for letter in chosen:
            headers = [(name, value) for name, value in letter.headers if not name.startswith("dlq_")]
            headers.append(("dlq_replayed_from_offset", str(letter.offset).encode()))
            await producer.send_and_wait(letter.meta["dlq_origin_topic"], letter.value, key=letter.key, headers=headers)
    finally:
        await producer.stop()
    return len(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--group", help="only messages this consumer group dead-lettered")
    parser.add_argument("--origin-topic", help="only messages from this topic")
    parser.add_argument("--event-id", help="only the message with this ce_id")
    args = parser.parse_args()
    if args.command == "list":
        for letter in asyncio.run(read_dead_letters(args.bootstrap)):
            if letter.matches(args.group, args.origin_topic, args.event_id):
                meta = letter.meta
                print(
                    f"{letter.offset}\t{meta.get('dlq_failed_at', '')}\t{meta.get('dlq_consumer_group', '')}\t"
                    f"{meta.get('dlq_origin_topic', '')}@{meta.get('dlq_origin_partition', '')}:"
                    f"{meta.get('dlq_origin_offset', '')}\t{meta.get('ce_type', '?')}\t{meta.get('dlq_reason', '')}"
                )
    else:
        count = asyncio.run(replay(args.bootstrap, args.group, args.origin_topic, args.event_id))
        print(f"replayed {count} message(s)")


if __name__ == "__main__":
    main()
