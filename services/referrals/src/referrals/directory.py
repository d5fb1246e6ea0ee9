"""The partner directory kept by the admin through the API (issue 9), instead of SQL.

`put_agency` adds an agency or replaces its entry; `set_active` deactivates it (no new
referrals; its open referrals stay and are followed up: reminders, expiry, answers, withdrawals)
or activates it again. Each runs in the caller's unit of work, audited with it by run_command.

A new agency's two Kafka topics (its referrals and its answers) are created by the route after
the commit (`agency_topics`), as the service does at startup for every agency in the table;
creating them again is harmless, so a repeated PUT also repairs topics a broker outage left out.

Not here: the agency's Keycloak client and users, and the Kafka ACLs that give only that agency
access to its topics. They belong to an agency's onboarding in the Kafka-security issue.
"""

from __future__ import annotations

from knotenpunkt import topics
from knotenpunkt.errors import Invalid, NotFound
from knotenpunkt.logging import get_logger
from knotenpunkt.topics import TopicSpec
from knotenpunkt.uow import UnitOfWork
from referrals.schemas import AgencyEntry, AgencyInput

log = get_logger("referrals")

# ISO 639-1 (the two-letter codes), as pycountry lists them; kept here so referrals needs no
# language database for one check.
ISO_639_1 = frozenset(
    """aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el
    en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja
    jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd
    ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg sh si sk sl sm sn so sq sr
    ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu""".split()
)

_COLUMNS = "agency_id, name, kind, topics, languages, contact, response_days, channel, active"


def agency_topics(agency_id: str, partitions: int) -> list[TopicSpec]:
    """The topics an agency needs: its referrals (read by it) and its answers (written by it)."""
    return [
        topics.agency_topic(name, partitions)
        for name in (topics.agency_referrals(agency_id), topics.agency_answers(agency_id))
    ]


def entry_problems(entry: AgencyInput, known_topics: set[str]) -> list[tuple[str, str, dict[str, str]]]:
    """Field errors of an entry beyond its shape: unknown topic codes or languages, repeated values."""
    problems: list[tuple[str, str, dict[str, str]]] = []
    for field, values, known, code, param in (
        ("topics", entry.topics, known_topics, "unknown_agency_topic", "topic"),
        ("languages", entry.languages, ISO_639_1, "unknown_agency_language", "value"),
    ):
        seen: set[str] = set()
        for index, value in enumerate(values):
            if value not in known:
                problems.append((f"{field}.{index}", code, {param: value}))
            elif value in seen:
                problems.append((f"{field}.{index}", "repeated_entry", {"value": value}))
            seen.add(value)
    return problems


async def put_agency(uow: UnitOfWork, agency_id: str, entry: AgencyInput) -> AgencyEntry:
    """Add the agency or replace its entry (whether it is active stays as it is). Referrals
    already sent keep their deadlines; the new response time counts for the next ones."""
    connection = uow.connection
    known = {row["code"] for row in await connection.fetch("SELECT code FROM topic_codes")}
    if problems := entry_problems(entry, known):
        raise Invalid.at(problems)
    row = await connection.fetchrow(
        "INSERT INTO agencies (agency_id, name, kind, response_days, channel, topics, languages, contact, "
        "changed_at, changed_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), $9) "
        "ON CONFLICT (agency_id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, "
        "response_days = EXCLUDED.response_days, channel = EXCLUDED.channel, topics = EXCLUDED.topics, "
        "languages = EXCLUDED.languages, contact = EXCLUDED.contact, changed_at = EXCLUDED.changed_at, "
        f"changed_by = EXCLUDED.changed_by RETURNING {_COLUMNS}, xmax = 0 AS created",
        agency_id,
        entry.name,
        entry.kind.value,
        entry.response_days,
        entry.channel.value,
        entry.topics,
        entry.languages,
        entry.contact,
        uow.actor.subject,
    )
    log.info("agency saved", agency_id=agency_id, created=row["created"])
    return AgencyEntry(**dict(row))


async def set_active(uow: UnitOfWork, agency_id: str, active: bool) -> AgencyEntry:
    """Deactivate (no new referrals) or activate an agency; 404 for an agency not in the directory."""
    row = await uow.connection.fetchrow(
        "UPDATE agencies SET active = $2, deactivated_at = CASE WHEN $2 THEN NULL ELSE coalesce(deactivated_at, "
        f"now()) END, changed_at = now(), changed_by = $3 WHERE agency_id = $1 RETURNING {_COLUMNS}",
        agency_id,
        active,
        uow.actor.subject,
    )
    if row is None:
        raise NotFound("Die Partnerstelle", "The partner agency")
    log.info("agency activated" if active else "agency deactivated", agency_id=agency_id)
    return AgencyEntry(**dict(row))
