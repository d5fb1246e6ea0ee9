"""Every Kafka topic name, in one place.

Names say the owning domain and the contract version. Event topics keep their whole history
(retention unlimited) so that read models can be rebuilt from offset 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CLIENTS = "knotenpunkt.intake.clients.v1"
CASES = "knotenpunkt.cases.cases.v1"
REFERRALS = "knotenpunkt.referrals.referrals.v1"
DEAD_LETTER = "knotenpunkt.deadletter.v1"

# An agency id becomes part of topic names (and principals): the only form accepted.
AGENCY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def agency_referrals(agency_id: str) -> str:
    """The topic a partner agency reads its referrals from (only that agency gets access)."""
    return f"knotenpunkt.agency.{_checked(agency_id)}.referrals.v1"


def agency_answers(agency_id: str) -> str:
    """The topic a partner agency writes its answers to (only that agency may write)."""
    return f"knotenpunkt.agency.{_checked(agency_id)}.answers.v1"


# Referrals subscribes to every agency's answers by pattern, so a new agency needs no restart.
AGENCY_ANSWERS_PATTERN = r"knotenpunkt\.agency\.[a-z0-9-]+\.answers\.v1"
_AGENCY_FROM_TOPIC = re.compile(r"^knotenpunkt\.agency\.([a-z0-9-]+)\.(referrals|answers)\.v1$")


def agency_of_topic(topic: str) -> str | None:
    """The agency id an agency topic belongs to, or None for any other topic."""
    match = _AGENCY_FROM_TOPIC.match(topic)
    return match.group(1) if match else None


def _checked(agency_id: str) -> str:
    if not AGENCY_ID.match(agency_id):
        raise ValueError(f"invalid agency id {agency_id!r}: lowercase letters, digits and '-'")
    return agency_id


@dataclass(frozen=True)
class TopicSpec:
    """How a topic is created: partitions are the unit of scale-out per consumer group."""

    name: str
    partitions: int = 3
    # -1: keep every event forever; the log is the source for rebuilding read models.
    retention_ms: int = -1


def event_topic(name: str, partitions: int = 3) -> TopicSpec:
    return TopicSpec(name=name, partitions=partitions, retention_ms=-1)


# Agency topics carry personal data (the consented `shared_data`): they are a delivery channel,
# not the history. They keep 30 days, enough for an agency's service to be down for weeks, and
# then the data is gone from Kafka (erasure on request must not wait for "forever").
AGENCY_TOPIC_RETENTION_MS = 30 * 24 * 3600 * 1000


def agency_topic(name: str, partitions: int = 3) -> TopicSpec:
    return TopicSpec(name=name, partitions=partitions, retention_ms=AGENCY_TOPIC_RETENTION_MS)


def dead_letter_topic() -> TopicSpec:
    return TopicSpec(name=DEAD_LETTER, partitions=1, retention_ms=-1)
