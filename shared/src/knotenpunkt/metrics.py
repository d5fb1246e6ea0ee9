"""Prometheus metrics every service exposes on /metrics: what operations teams scale by.

- consumer lag per group and partition (from the consumer's own high watermark, no extra calls);
- events handled per group, type and outcome, and the handlers' latency;
- outbox backlog and events published by the relay.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_HANDLED = Counter(
    "knotenpunkt_events_handled_total",
    "Events a consumer group handled, by outcome (applied, duplicate, skipped, dead_lettered).",
    ["group", "event_type", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "knotenpunkt_handler_seconds",
    "Time from taking an event to its committed effect (transaction included).",
    ["group", "event_type"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_LAG = Gauge(
    "knotenpunkt_consumer_lag",
    "Records behind the partition's end (high watermark minus the next offset to apply); updated while idle.",
    ["group", "topic", "partition"],
)
CONSUMER_STALLED = Gauge(
    "knotenpunkt_consumer_stalled",
    "1 while records have waited on a partition of the consumer without progress for longer than allowed "
    "(evaluated when scraped).",
    ["group", "consumer"],
)
OUTBOX_BACKLOG = Gauge(
    "knotenpunkt_outbox_backlog",
    "Outbox rows not yet published, counted in the database by every replica (leader or standby): "
    "after each relay round and every few seconds.",
)
OUTBOX_BACKLOG_COUNTED_AT = Gauge(
    "knotenpunkt_outbox_backlog_counted_at_seconds",
    "Unix time of the last backlog count; it falls behind while the database does not answer.",
)
OUTBOX_PUBLISHED = Counter("knotenpunkt_outbox_published_total", "Events the relay published to Kafka.")
