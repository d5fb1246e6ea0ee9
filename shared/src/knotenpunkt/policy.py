"""Who may do what: one table of permissions for every service, a per-record check and a query
scope (a SQL filter), so lists and searches are filtered in PostgreSQL, never after.

A role grants an action with a reach (`Reach`): ALL records, those of the person's OFFICE,
those at their office that are assigned to them or to nobody (OWN_OR_UNASSIGNED), only those
assigned to them (OWN), or those addressed to their AGENCY. A person with several roles gets
the widest reach any of them grants. Anything not in the table is denied (deny by default).

    require(actor, Action.CASE_CHANGE, Record(office_id="rsc-hamborn", assigned_to=None))
    where, params = scope(actor, Action.CASE_READ, Columns(office="office_id"), first_param=2)

docs/operations.md ("Sign-in and roles") shows the table for people; tests/unit of shared
test it whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from knotenpunkt.errors import Forbidden
from knotenpunkt.i18n import register_messages
from knotenpunkt.uow import Actor


class Action(StrEnum):
    # Persons (intake)
    CLIENT_REGISTER = "client.register"
    CLIENT_SEARCH = "client.search"
    CLIENT_READ = "client.read"
    CLIENT_CORRECT = "client.correct"
    CLIENT_MERGE = "client.merge"
    CLIENT_ERASE = "client.erase"
    CLIENT_EXPORT = "client.export"
    CONSENT_READ = "consent.read"
    CONSENT_RECORD = "consent.record"
    CONSENT_WITHDRAW = "consent.withdraw"
    # What an agency may receive under consent: read only by referrals, for a person allowed to refer.
    SHARED_DATA_READ = "shared_data.read"
    # Cases
    CASE_READ = "case.read"
    CASE_CHANGE = "case.change"
    CASE_NOTE = "case.note"
    CASE_ASSIGN = "case.assign"
    # Referrals
    REFERRAL_READ = "referral.read"
    REFERRAL_SEND = "referral.send"
    REFERRAL_WITHDRAW = "referral.withdraw"
    AGENCY_INBOX = "agency.inbox"
    AGENCY_ANSWER = "agency.answer"
    # Figures, gaps, audit, reference data
    FIGURES_READ = "figures.read"
    GAPS_READ = "gaps.read"
    AUDIT_READ = "audit.read"
    REFERENCE_READ = "reference.read"
    REFERENCE_WRITE = "reference.write"
    # /metrics when it is not open (KP_OPEN_METRICS=false)
    OPERATIONS_READ = "operations.read"


class Reach(IntEnum):
    """How far a grant reaches; larger is wider."""

    OWN = 1
    OWN_OR_UNASSIGNED = 2
    OFFICE = 3
    AGENCY = 4  # not comparable with the office reaches: a role has one or the other
    ALL = 5


_PERSON_WORK = {
    Action.CLIENT_REGISTER: Reach.OFFICE,
    Action.CLIENT_SEARCH: Reach.OFFICE,
    Action.CLIENT_READ: Reach.OFFICE,
    Action.CLIENT_CORRECT: Reach.OFFICE,
    Action.CONSENT_READ: Reach.OFFICE,
    Action.CONSENT_RECORD: Reach.OFFICE,
    Action.CONSENT_WITHDRAW: Reach.OFFICE,
}

# role -> action -> reach. Deny by default: what is not here is refused.
PERMISSIONS: dict[str, dict[Action, Reach]] = {
    "intake_staff": {
        **_PERSON_WORK,
        Action.CLIENT_MERGE: Reach.OFFICE,
        Action.REFERENCE_READ: Reach.ALL,
    },
    "case_manager": {
        **_PERSON_WORK,
        Action.CASE_READ: Reach.OFFICE,
        Action.CASE_CHANGE: Reach.OWN_OR_UNASSIGNED,
        Action.CASE_NOTE: Reach.OWN,
        Action.REFERRAL_READ: Reach.OFFICE,
        Action.REFERRAL_SEND: Reach.OWN_OR_UNASSIGNED,
        Action.REFERRAL_WITHDRAW: Reach.OWN_OR_UNASSIGNED,
        Action.SHARED_DATA_READ: Reach.OWN_OR_UNASSIGNED,
        Action.REFERENCE_READ: Reach.ALL,
    },
    "office_lead": {
        **_PERSON_WORK,
        Action.CLIENT_MERGE: Reach.OFFICE,
        Action.CASE_READ: Reach.OFFICE,
        Action.CASE_CHANGE: Reach.OFFICE,
        Action.CASE_NOTE: Reach.OFFICE,
        Action.CASE_ASSIGN: Reach.OFFICE,
        Action.REFERRAL_READ: Reach.OFFICE,
        Action.REFERRAL_SEND: Reach.OFFICE,
        Action.REFERRAL_WITHDRAW: Reach.OFFICE,
        Action.SHARED_DATA_READ: Reach.OFFICE,
        Action.FIGURES_READ: Reach.ALL,
        Action.GAPS_READ: Reach.ALL,
        Action.REFERENCE_READ: Reach.ALL,
    },
    "coordinator": {
        Action.FIGURES_READ: Reach.ALL,
        Action.GAPS_READ: Reach.ALL,
        Action.REFERENCE_READ: Reach.ALL,
    },
    "data_protection_officer": {
        Action.AUDIT_READ: Reach.ALL,
        Action.CLIENT_EXPORT: Reach.ALL,
        Action.CLIENT_ERASE: Reach.ALL,
        Action.REFERENCE_READ: Reach.ALL,
    },
    "admin": {
        Action.REFERENCE_READ: Reach.ALL,
        Action.REFERENCE_WRITE: Reach.ALL,
        Action.OPERATIONS_READ: Reach.ALL,
    },
    "agency_staff": {
        Action.AGENCY_INBOX: Reach.AGENCY,
        Action.AGENCY_ANSWER: Reach.AGENCY,
        # The consented data of a referral addressed to the agency, relayed by referrals' inbox.
        Action.SHARED_DATA_READ: Reach.AGENCY,
        Action.REFERENCE_READ: Reach.ALL,
    },
    "agency_system": {
        Action.AGENCY_INBOX: Reach.AGENCY,
        Action.AGENCY_ANSWER: Reach.AGENCY,
        Action.SHARED_DATA_READ: Reach.AGENCY,
    },
    # A service acting on its own (not on behalf of a person): nothing over HTTP. Services
    # relaying a person's request act with that person's permissions (`Actor.via`).
    "service": {},
}

# Actions a service may relay on a person's behalf, by service: a person's token alone is not
# enough for these (e.g. what an agency may receive is read only when referrals asks).
RELAYED_ONLY: dict[Action, frozenset[str]] = {Action.SHARED_DATA_READ: frozenset({"referrals"})}

ROLES = tuple(PERMISSIONS)

register_messages(
    {
        "forbidden_role": {
            "de": "Ihre Rolle erlaubt das nicht ({action}).",
            "en": "Your role does not allow this ({action}).",
        },
        "forbidden_office": {
            "de": "Dieser Datensatz gehört zu einer anderen Dienststelle; Ihre Rolle erlaubt nur Ihre eigene.",
            "en": "This record belongs to another office; your role allows only your own.",
        },
        "forbidden_not_assigned": {
            "de": "Dieser Fall ist einer anderen Fachkraft zugewiesen; ändern darf ihn nur sie oder die Leitung.",
            "en": "This case is assigned to another case manager; only they or the office lead may change it.",
        },
        "forbidden_not_own": {
            "de": "Notizen und Beratungen nur in Fällen, die Ihnen zugewiesen sind.",
            "en": "Notes and consultations only on cases assigned to you.",
        },
        "forbidden_agency": {
            "de": "Diese Überweisung ist an eine andere Stelle gerichtet.",
            "en": "This referral is addressed to another agency.",
        },
        "forbidden_not_relayed": {
            "de": "Diese Angaben gibt es nur über den zuständigen Dienst.",
            "en": "This is answered only to the responsible service.",
        },
    }
)


@dataclass(frozen=True)
class Record:
    """What the policy needs to know of one record: where it belongs. A person's record belongs
    to the office of registration and to every office running a case of theirs (`also_offices`)."""

    office_id: str | None = None
    assigned_to: str | None = None
    agency_id: str | None = None
    also_offices: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Columns:
    """The columns of a query's table that hold the record's office, assignee and agency."""

    office: str | None = None
    assigned: str | None = None
    agency: str | None = None
    # An expression of type text[]: more offices the record belongs to.
    also_offices: str | None = None


def grants(actor: Actor, action: Action) -> list[Reach]:
    """The reaches the actor's roles grant for the action (empty: denied outright)."""
    if action in RELAYED_ONLY and actor.via not in RELAYED_ONLY[action]:
        return []
    return [reach for role in actor.roles if (reach := PERMISSIONS.get(role, {}).get(action)) is not None]


def permitted(actor: Actor, action: Action) -> bool:
    """May the actor do this to any record at all? (The route-level check.)"""
    return bool(grants(actor, action))


def decide(actor: Actor, action: Action, record: Record) -> str | None:
    """None when allowed, else the reason's message code."""
    reaches = grants(actor, action)
    if not reaches:
        return _refusal(actor, action)
    reasons = [_reason(actor, reach, record) for reach in reaches]
    if None in reasons:
        return None
    # The reason of the widest grant: what the person could most nearly do.
    return reasons[reaches.index(max(reaches))]


def can(actor: Actor, action: Action, record: Record) -> bool:
    return decide(actor, action, record) is None


def require(actor: Actor, action: Action, record: Record | None = None) -> None:
    """Raise Forbidden (403, with the reason in German or English) unless allowed; without a
    record, whether the actor may do this to any record at all."""
    if record is not None:
        reason = decide(actor, action, record)
    elif grants(actor, action):
        reason = None
    else:
        reason = _refusal(actor, action)
    if reason is not None:
        raise Forbidden(reason, action=action.value)


def _refusal(actor: Actor, action: Action) -> str:
    """Why nothing is granted: the role would be allowed, but only through the responsible
    service (`forbidden_not_relayed`), or the role is not allowed at all."""
    role_grants = any(action in PERMISSIONS.get(role, {}) for role in actor.roles)
    return "forbidden_not_relayed" if action in RELAYED_ONLY and role_grants else "forbidden_role"


def _reason(actor: Actor, reach: Reach, record: Record) -> str | None:
    if reach is Reach.ALL:
        return None
    if reach is Reach.AGENCY:
        return None if actor.agency_id and record.agency_id == actor.agency_id else "forbidden_agency"
    if record.office_id not in actor.offices and not (actor.offices & record.also_offices):
        return "forbidden_office"
    if reach is Reach.OFFICE:
        return None
    if reach is Reach.OWN_OR_UNASSIGNED:
        return None if record.assigned_to in (None, actor.subject) else "forbidden_not_assigned"
    return None if record.assigned_to == actor.subject else "forbidden_not_own"


def scope(actor: Actor, action: Action, columns: Columns, first_param: int = 1) -> tuple[str, list[Any]]:
    """A SQL condition that keeps exactly the records the actor may see for this action, and
    its parameters ($first_param, ...). FALSE when nothing is allowed."""
    reaches = grants(actor, action)
    if not reaches:
        return "FALSE", []
    conditions: list[str] = []
    params: list[Any] = []

    def param(value: Any) -> str:
        params.append(value)
        return f"${first_param + len(params) - 1}"

    for reach in sorted(set(reaches), reverse=True):
        if reach is Reach.ALL:
            return "TRUE", []
        if reach is Reach.AGENCY:
            if columns.agency is None or actor.agency_id is None:
                continue
            conditions.append(f"{columns.agency} = {param(actor.agency_id)}")
            continue
        if columns.office is None:
            raise ValueError(f"scope of {action} needs the office column")
        offices = param(sorted(actor.offices))
        office = f"{columns.office} = ANY({offices}::text[])"
        if columns.also_offices is not None:
            office = f"({office} OR {columns.also_offices} && {offices}::text[])"
        if reach is Reach.OFFICE:
            conditions.append(office)
            continue
        if columns.assigned is None:
            raise ValueError(f"scope of {action} needs the assignee column")
        me = param(actor.subject)
        if reach is Reach.OWN_OR_UNASSIGNED:
            conditions.append(f"({office} AND ({columns.assigned} IS NULL OR {columns.assigned} = {me}))")
        else:
            conditions.append(f"({office} AND {columns.assigned} = {me})")
    if not conditions:
        return "FALSE", []
    return "(" + " OR ".join(conditions) + ")", params


def matrix() -> Mapping[str, Mapping[Action, Reach]]:
    """The whole table (for docs and tests)."""
    return PERMISSIONS
