"""Rebuild every stats read model from offset 0: `uv run python -m stats.rebuild`.

1. A fresh schema (`readmodel_rebuild`) is created from readmodel.sql, with its own offsets.
2. The stats projection fills it from the beginning of every lifecycle topic up to their
   current ends, with a progress bar, while the live read models keep answering.
3. The swap: one transaction locks the live offsets (the live consumer cannot commit a batch
   meanwhile), lets the rebuild catch up with whatever the live consumer had stored, then drops
   the live schema and renames the rebuilt one in its place. Readers see the old figures or the
   new ones, never a mix. The live consumer notices that the stored offsets moved and seeks to
   them (see knotenpunkt.projection), so nothing is lost or counted twice across the swap.

The same environment variables as the service (KP_DATABASE_URL, KP_KAFKA_BOOTSTRAP, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from aiokafka import TopicPartition

from knotenpunkt import migrations
from knotenpunkt.db import Database
from knotenpunkt.kafka import DeadLetterPublisher, Producer, ensure_topics
from knotenpunkt.logging import configure_logging, get_logger
from knotenpunkt.projection import ProjectionConsumer, tune_gc_for_batches
from knotenpunkt.topics import event_topic
from stats import readmodel
from stats.app import MIGRATIONS, TOPICS, projection_consumer
from stats.settings import StatsSettings

log = get_logger("stats.rebuild")


class ProgressBar:
    """A one-line progress bar on a terminal (a line per 10 % elsewhere, e.g. in CI logs)."""

    def __init__(self, total: int, out: TextIO = sys.stderr, width: int = 30) -> None:
        self.total = max(total, 0)
        self.out = out
        self.width = width
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._last_tenth = -1
        self._tty = out.isatty()

    def update(self, done: int) -> None:
        now = time.monotonic()
        fraction = 1.0 if self.total == 0 else min(done / self.total, 1.0)
        tenth = int(fraction * 10)
        if self._tty and now - self._last_draw < 0.2 and fraction < 1.0:
            return
        if not self._tty and tenth == self._last_tenth:
            return
        self._last_draw, self._last_tenth = now, tenth
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else 0.0
        filled = int(fraction * self.width)
        line = (
            f"[{'#' * filled}{'-' * (self.width - filled)}] {fraction * 100:5.1f}% "
            f"{done:,}/{self.total:,} events  {rate:,.0f} events/s  ETA {eta:,.0f} s"
        )
        self.out.write(("\r" + line) if self._tty else (line + "\n"))
        self.out.flush()

    def finish(self) -> None:
        if self._tty:
            self.out.write("\n")
            self.out.flush()


@dataclass(frozen=True)
class RebuildResult:
    events: int
    seconds: float
    offsets: dict[TopicPartition, int]


async def rebuild(
    settings: StatsSettings,
    topic_names: Sequence[str] = TOPICS,
    progress_out: TextIO | None = sys.stderr,
) -> RebuildResult:
    """Rebuild into fresh tables and swap them in; returns what was applied and how long it took."""
    started = time.monotonic()
    await migrations.apply(settings.database_url, migrations.migration_sets(settings.service_name, MIGRATIONS))
    await ensure_topics(settings.kafka_bootstrap, [event_topic(n, settings.topic_partitions) for n in topic_names])
    database = Database(settings.database_url, min_size=1, max_size=4)
    await database.connect()
    producer = Producer(settings.kafka_bootstrap, f"{settings.service_name}-rebuild")
    await producer.start()
    try:
        await readmodel.ensure_live(database)
        async with database.transaction() as connection:
            await connection.execute(f"DROP SCHEMA IF EXISTS {readmodel.REBUILD_SCHEMA} CASCADE")
            await readmodel.create_schema(connection, readmodel.REBUILD_SCHEMA)
        # Messages that cannot be decoded are dead-lettered again, marked as the rebuild's.
        dead_letters = DeadLetterPublisher(producer, f"knotenpunkt.{settings.service_name}.rebuild")
        consumer = projection_consumer(
            settings,
            database,
            dead_letters,
            schema=readmodel.REBUILD_SCHEMA,
            group_id=None,
            topic_names=tuple(topic_names),
        )
        await consumer.start()
        try:
            ends = await consumer.end_offsets()
            beginnings = await consumer.kafka.beginning_offsets(list(ends))
            total = sum(ends.values()) - sum(beginnings.values())
            bar = ProgressBar(total, progress_out) if progress_out is not None else None

            def progress(position: int) -> None:
                if bar is not None:
                    bar.update(position - sum(beginnings.values()))

            await consumer.run_until(ends, progress)
            if bar is not None:
                bar.update(total)
                bar.finish()
            await _swap(database, consumer, ends)
            applied = consumer.stats.records_seen
            offsets = consumer.stored_offsets()
        finally:
            await consumer.stop()
    finally:
        await producer.stop()
        await database.close()
    seconds = time.monotonic() - started
    log.info("read models rebuilt and swapped in", events=applied, seconds=round(seconds, 1))
    return RebuildResult(applied, seconds, offsets)


async def _swap(database: Database, consumer: ProjectionConsumer, ends: dict[TopicPartition, int]) -> None:
    live_offsets = readmodel.offsets_table(readmodel.LIVE_SCHEMA)
    async with database.connection() as connection, connection.transaction():
        # From here on the live consumer cannot store a batch: its offsets are fixed.
        await connection.execute(f"LOCK TABLE {live_offsets} IN EXCLUSIVE MODE")
        rows = await connection.fetch(
            f"SELECT topic, partition, next_offset FROM {live_offsets} WHERE consumer = $1",
            readmodel.PROJECTION_NAME,
        )
        live = {TopicPartition(row["topic"], row["partition"]): row["next_offset"] for row in rows}
        # The rebuild must contain at least what the live tables contain.
        target = {tp: max(end, live.get(tp, 0)) for tp, end in ends.items()}
        await consumer.run_until(target)
        await readmodel.swap_in(connection, readmodel.REBUILD_SCHEMA)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    settings = StatsSettings()
    configure_logging(settings.log_level, settings.log_json)
    tune_gc_for_batches(settings.projection_batch_size)
    result = asyncio.run(rebuild(settings))
    rate = result.events / result.seconds if result.seconds else 0
    print(f"rebuilt from {result.events:,} events in {result.seconds:.1f} s ({rate:,.0f} events/s); swapped in")


if __name__ == "__main__":
    main()
