"""The permission table, whole: every role against every action and every kind of record, the
per-record check and the SQL scope agreeing with each other (the scope run on real rows in
PostgreSQL is in tests/integration/test_identity.py)."""

from __future__ import annotations

import pytest

from knotenpunkt.errors import Forbidden
from knotenpunkt.policy import PERMISSIONS, Action, Columns, Reach, Record, can, decide, require, scope
from knotenpunkt.uow import Actor

HAMBORN, HOCHFELD = "rsc-hamborn", "rsc-hochfeld"
ME, OTHER = "staff-hamborn-1", "staff-hamborn-2"

PEOPLE = {
    "intake_staff": Actor.staff("intake-hamborn", "intake_staff", offices=(HAMBORN,)),
    "case_manager": Actor.staff(ME, "case_manager", offices=(HAMBORN,)),
    "office_lead": Actor.staff("lead-hamborn", "office_lead", offices=(HAMBORN,)),
    "coordinator": Actor.staff("coordinator", "coordinator"),
    "data_protection_officer": Actor.staff("dpo", "data_protection_officer"),
    "admin": Actor.staff("admin", "admin"),
    "agency_staff": Actor.staff("agency-jobcenter-duisburg", "agency_staff", agency_id="jobcenter-duisburg"),
}

# The records a rule can meet: (name, record).
RECORDS = {
    "mine": Record(office_id=HAMBORN, assigned_to=ME),
    "unassigned here": Record(office_id=HAMBORN, assigned_to=None),
    "a colleague's": Record(office_id=HAMBORN, assigned_to=OTHER),
    "other office": Record(office_id=HOCHFELD, assigned_to=None),
    "my agency's": Record(office_id=HOCHFELD, agency_id="jobcenter-duisburg"),
    "another agency's": Record(office_id=HAMBORN, agency_id="jugendamt-duisburg"),
}

# What the issue asks, written out as expectations: role -> action -> records allowed.
EVERY = set(RECORDS)
OFFICE = {"mine", "unassigned here", "a colleague's", "another agency's"}
OWN_OR_UNASSIGNED = {"mine", "unassigned here", "another agency's"}  # unassigned, at my office
EXPECTED: dict[str, dict[Action, set[str]]] = {
    "intake_staff": {
        **{
            action: OFFICE
            for action in (
                Action.CLIENT_REGISTER,
                Action.CLIENT_SEARCH,
                Action.CLIENT_READ,
                Action.CLIENT_CORRECT,
                Action.CLIENT_MERGE,
                Action.CONSENT_READ,
                Action.CONSENT_RECORD,
                Action.CONSENT_WITHDRAW,
            )
        },
        Action.REFERENCE_READ: EVERY,
    },
    "case_manager": {
        **{
            action: OFFICE
            for action in (
                Action.CLIENT_REGISTER,
                Action.CLIENT_SEARCH,
                Action.CLIENT_READ,
                Action.CLIENT_CORRECT,
                Action.CONSENT_READ,
                Action.CONSENT_RECORD,
                Action.CONSENT_WITHDRAW,
                Action.CASE_READ,
                Action.REFERRAL_READ,
            )
        },
        Action.CASE_CHANGE: OWN_OR_UNASSIGNED,
        Action.REFERRAL_SEND: OWN_OR_UNASSIGNED,
        Action.REFERRAL_WITHDRAW: OWN_OR_UNASSIGNED,
        Action.CASE_NOTE: {"mine"},
        Action.REFERENCE_READ: EVERY,
    },
    "office_lead": {
        **{
            action: OFFICE
            for action in (
                Action.CLIENT_REGISTER,
                Action.CLIENT_SEARCH,
                Action.CLIENT_READ,
                Action.CLIENT_CORRECT,
                Action.CLIENT_MERGE,
                Action.CONSENT_READ,
                Action.CONSENT_RECORD,
                Action.CONSENT_WITHDRAW,
                Action.CASE_READ,
                Action.CASE_CHANGE,
                Action.CASE_NOTE,
                Action.CASE_ASSIGN,
                Action.REFERRAL_READ,
                Action.REFERRAL_SEND,
                Action.REFERRAL_WITHDRAW,
            )
        },
        Action.FIGURES_READ: EVERY,
        Action.GAPS_READ: EVERY,
        Action.REFERENCE_READ: EVERY,
    },
    "coordinator": {Action.FIGURES_READ: EVERY, Action.GAPS_READ: EVERY, Action.REFERENCE_READ: EVERY},
    "data_protection_officer": {
        Action.AUDIT_READ: EVERY,
        Action.CLIENT_EXPORT: EVERY,
        Action.CLIENT_ERASE: EVERY,
        Action.REFERENCE_READ: EVERY,
    },
    "admin": {Action.REFERENCE_READ: EVERY, Action.REFERENCE_WRITE: EVERY, Action.OPERATIONS_READ: EVERY},
    "agency_staff": {
        Action.AGENCY_INBOX: {"my agency's"},
        Action.AGENCY_ANSWER: {"my agency's"},
        Action.REFERENCE_READ: EVERY,
    },
}

CASES = [
    (role, action, record_name)
    for role in PEOPLE
    for action in Action
    for record_name in RECORDS
    if action is not Action.SHARED_DATA_READ  # relayed only: its own test below
]


@pytest.mark.parametrize(("role", "action", "record_name"), CASES)
def test_the_table_allows_exactly_what_the_issue_asks(role: str, action: Action, record_name: str) -> None:
    allowed = record_name in EXPECTED[role].get(action, set())
    assert can(PEOPLE[role], action, RECORDS[record_name]) is allowed


def test_every_role_of_the_realm_has_a_row_and_nothing_unlisted_is_allowed() -> None:
    from tools.realm import ROLES

    assert set(PERMISSIONS) == set(ROLES)
    nobody = Actor.unknown()
    assert not any(can(nobody, action, record) for action in Action for record in RECORDS.values())
    service = Actor.service("cases")
    assert not any(can(service, action, record) for action in Action for record in RECORDS.values())


def test_denials_name_the_reason_of_the_widest_grant() -> None:
    case_manager = PEOPLE["case_manager"]
    assert decide(case_manager, Action.CASE_READ, RECORDS["other office"]) == "forbidden_office"
    assert decide(case_manager, Action.CASE_CHANGE, RECORDS["a colleague's"]) == "forbidden_not_assigned"
    assert decide(case_manager, Action.CASE_NOTE, RECORDS["unassigned here"]) == "forbidden_not_own"
    assert decide(PEOPLE["coordinator"], Action.CLIENT_READ, RECORDS["mine"]) == "forbidden_role"
    assert decide(PEOPLE["agency_staff"], Action.AGENCY_INBOX, RECORDS["another agency's"]) == "forbidden_agency"
    with pytest.raises(Forbidden) as denied:
        require(PEOPLE["coordinator"], Action.CLIENT_READ)
    assert (denied.value.status_code, denied.value.code, denied.value.action) == (403, "forbidden_role", "client.read")


def test_what_an_agency_may_receive_is_read_only_when_referrals_relays_a_permitted_person() -> None:
    case_manager = PEOPLE["case_manager"]
    relayed = Actor(**{**case_manager.__dict__, "via": "referrals"})
    by_cases = Actor(**{**case_manager.__dict__, "via": "cases"})
    record = RECORDS["mine"]
    assert can(relayed, Action.SHARED_DATA_READ, record)
    assert decide(case_manager, Action.SHARED_DATA_READ, record) == "forbidden_not_relayed"
    assert decide(by_cases, Action.SHARED_DATA_READ, record) == "forbidden_not_relayed"
    coordinator = Actor(**{**PEOPLE["coordinator"].__dict__, "via": "referrals"})
    assert not can(coordinator, Action.SHARED_DATA_READ, record)
    # An agency, through referrals' inbox: only for a referral addressed to it.
    agency = Actor(**{**PEOPLE["agency_staff"].__dict__, "via": "referrals"})
    assert can(agency, Action.SHARED_DATA_READ, RECORDS["my agency's"])
    assert decide(agency, Action.SHARED_DATA_READ, RECORDS["another agency's"]) == "forbidden_agency"
    assert decide(PEOPLE["agency_staff"], Action.SHARED_DATA_READ, RECORDS["my agency's"]) == "forbidden_not_relayed"


def test_a_person_with_two_roles_gets_the_wider_reach() -> None:
    both = Actor.staff(ME, "case_manager", "office_lead", offices=(HAMBORN,))
    assert can(both, Action.CASE_NOTE, RECORDS["a colleague's"])
    assert not can(both, Action.CASE_NOTE, RECORDS["other office"])


def _matches(condition: str, params: list[object], row: dict[str, object]) -> bool:
    """Evaluate a scope condition on one row in Python, the way PostgreSQL would (the real
    database does it in tests/integration/test_identity.py)."""
    text = condition
    for index in range(len(params), 0, -1):
        text = text.replace(f"${index}", f"__p[{index - 1}]")
    text = text.replace("::text[]", "").replace(" = ANY(", " in (").replace(" IS NULL", " is None")
    text = text.replace(" AND ", " and ").replace(" OR ", " or ").replace(" = ", " == ")
    text = text.replace("TRUE", "True").replace("FALSE", "False")
    return bool(eval(text, {"__p": params}, dict(row)))


@pytest.mark.parametrize("role", list(PEOPLE))
@pytest.mark.parametrize(
    "action", [Action.CASE_READ, Action.CASE_CHANGE, Action.CASE_NOTE, Action.AGENCY_INBOX, Action.FIGURES_READ]
)
def test_the_sql_scope_keeps_exactly_the_records_the_check_allows(role: str, action: Action) -> None:
    columns = Columns(office="office_id", assigned="assigned_to", agency="agency_id")
    condition, params = scope(PEOPLE[role], action, columns, first_param=3)
    assert all(f"${n}" in condition for n in range(3, 3 + len(params)))
    for name, record in RECORDS.items():
        row = {"office_id": record.office_id, "assigned_to": record.assigned_to, "agency_id": record.agency_id}
        shifted = [None, None, *params]  # the query's own $1 and $2 come first
        assert _matches(condition, shifted, row) is can(PEOPLE[role], action, record), name


def test_a_person_belongs_also_to_the_offices_running_a_case_of_theirs() -> None:
    transferred = Record(office_id=HOCHFELD, also_offices=frozenset({HAMBORN}))
    assert can(PEOPLE["intake_staff"], Action.CLIENT_READ, transferred)
    assert not can(Actor.staff("x", "intake_staff", offices=("rsc-rheinhausen",)), Action.CLIENT_READ, transferred)
    condition, params = scope(PEOPLE["intake_staff"], Action.CLIENT_READ, Columns(office="o", also_offices="a"))
    assert condition == "((o = ANY($1::text[]) OR a && $1::text[]))" and params == [[HAMBORN]]


def test_reaches_are_ordered_from_narrow_to_wide() -> None:
    assert Reach.OWN < Reach.OWN_OR_UNASSIGNED < Reach.OFFICE < Reach.ALL
