"""Who may do what with referrals, table-tested with actors built in code (the integration tests
show the same with real Keycloak tokens)."""

from __future__ import annotations

import pytest

from knotenpunkt.errors import Forbidden
from knotenpunkt.policy import Action
from knotenpunkt.uow import Actor
from referrals import access

HAMBORN, HOCHFELD = "rsc-hamborn", "rsc-hochfeld"
CM_HAMBORN = Actor.staff("staff-hamborn-1", "case_manager", offices=(HAMBORN,))
CM_HAMBORN_2 = Actor.staff("staff-hamborn-2", "case_manager", offices=(HAMBORN,))
CM_HOCHFELD = Actor.staff("staff-hochfeld-1", "case_manager", offices=(HOCHFELD,))
LEAD_HAMBORN = Actor.staff("lead-hamborn", "office_lead", offices=(HAMBORN,))
INTAKE_HAMBORN = Actor.staff("intake-hamborn", "intake_staff", offices=(HAMBORN,))
COORDINATOR = Actor.staff("coordinator", "coordinator")
DPO = Actor.staff("dpo", "data_protection_officer")
JOBCENTER = Actor.staff("agency-jobcenter-duisburg", "agency_staff", agency_id="jobcenter-duisburg")
JOBCENTER_SYSTEM = Actor.staff("agency-jobcenter-duisburg", "agency_system", agency_id="jobcenter-duisburg")
JUGENDAMT = Actor.staff("agency-jugendamt-duisburg", "agency_staff", agency_id="jugendamt-duisburg")


def refusal(check: object) -> str | None:
    """None when the check passes, else the 403's reason code."""
    try:
        check()  # type: ignore[operator]
    except Forbidden as refused:
        assert refused.status_code == 403
        return refused.code
    return None


@pytest.mark.parametrize(
    ("actor", "office", "case_manager", "expected"),
    [
        (CM_HAMBORN, HAMBORN, "staff-hamborn-1", None),  # their own case
        (CM_HAMBORN, HAMBORN, None, None),  # unassigned at their office
        (CM_HAMBORN_2, HAMBORN, "staff-hamborn-1", "forbidden_not_assigned"),  # a colleague's case
        (CM_HAMBORN, HOCHFELD, None, "forbidden_office"),  # a Hochfeld case
        (CM_HOCHFELD, HAMBORN, "staff-hamborn-1", "forbidden_office"),
        (LEAD_HAMBORN, HAMBORN, "staff-hamborn-1", None),  # the lead: any case of the office
        (LEAD_HAMBORN, HOCHFELD, None, "forbidden_office"),
        (INTAKE_HAMBORN, HAMBORN, None, "forbidden_role"),
        (COORDINATOR, HAMBORN, None, "forbidden_role"),
        (DPO, HAMBORN, None, "forbidden_role"),
        (JOBCENTER, HAMBORN, None, "forbidden_role"),
    ],
)
@pytest.mark.parametrize("action", [Action.REFERRAL_SEND, Action.REFERRAL_WITHDRAW])
def test_sending_and_withdrawing_act_on_the_case(
    action: Action, actor: Actor, office: str, case_manager: str | None, expected: str | None
) -> None:
    assert refusal(lambda: access.require_on_case(actor, action, office, case_manager)) == expected


@pytest.mark.parametrize(
    ("actor", "sent_by", "case_office", "expected"),
    [
        (CM_HAMBORN, HAMBORN, HAMBORN, None),
        (CM_HAMBORN_2, HAMBORN, HAMBORN, None),  # reading: the whole office, not only one's own cases
        (CM_HOCHFELD, HAMBORN, HAMBORN, "forbidden_office"),
        (CM_HOCHFELD, HAMBORN, HOCHFELD, None),  # the case moved to Hochfeld with its referrals
        (CM_HAMBORN, HAMBORN, HOCHFELD, None),  # the office that sent it still sees what it sent
        (LEAD_HAMBORN, HAMBORN, HAMBORN, None),
        (COORDINATOR, HAMBORN, HAMBORN, "forbidden_role"),  # figures and gaps, never a referral
        (INTAKE_HAMBORN, HAMBORN, HAMBORN, "forbidden_role"),
        (JOBCENTER, HAMBORN, HAMBORN, "forbidden_role"),  # agencies read through the inbox only
    ],
)
def test_reading_a_referral(actor: Actor, sent_by: str, case_office: str | None, expected: str | None) -> None:
    assert refusal(lambda: access.require_read(actor, sent_by, case_office, "staff-hamborn-1")) == expected


@pytest.mark.parametrize(
    ("actor", "path_agency", "expected"),
    [
        (JOBCENTER, "jobcenter-duisburg", None),
        (JOBCENTER_SYSTEM, "jobcenter-duisburg", None),  # the agency's own software
        (JUGENDAMT, "jobcenter-duisburg", "forbidden_agency"),
        (CM_HAMBORN, "jobcenter-duisburg", "forbidden_role"),
        (COORDINATOR, "jobcenter-duisburg", "forbidden_role"),
    ],
)
@pytest.mark.parametrize("action", [Action.AGENCY_INBOX, Action.AGENCY_ANSWER])
def test_the_inbox_path_names_the_signed_in_agency(
    action: Action, actor: Actor, path_agency: str, expected: str | None
) -> None:
    assert refusal(lambda: access.require_own_agency(actor, action, path_agency)) == expected


@pytest.mark.parametrize(
    ("actor", "addressed_to", "expected"),
    [
        (JOBCENTER, "jobcenter-duisburg", None),
        (JOBCENTER_SYSTEM, "jobcenter-duisburg", None),
        (JOBCENTER, "jugendamt-duisburg", "forbidden_agency"),
        (CM_HAMBORN, "jobcenter-duisburg", "forbidden_role"),
    ],
)
@pytest.mark.parametrize("action", [Action.AGENCY_INBOX, Action.AGENCY_ANSWER])
def test_an_agency_reads_and_answers_only_referrals_addressed_to_it(
    action: Action, actor: Actor, addressed_to: str, expected: str | None
) -> None:
    assert refusal(lambda: access.require_addressed_to(actor, action, addressed_to)) == expected


def test_the_list_scope_filters_by_both_offices_in_sql() -> None:
    condition, params = access.read_scope(CM_HAMBORN, first_param=7)
    assert condition == "((r.office_id = ANY($7::text[])) OR (c.office_id = ANY($8::text[])))"
    assert params == [[HAMBORN], [HAMBORN]]


@pytest.mark.parametrize("actor", [COORDINATOR, INTAKE_HAMBORN, DPO, JOBCENTER])
def test_the_list_scope_of_someone_who_may_not_read_referrals_is_empty(actor: Actor) -> None:
    assert access.read_scope(actor, first_param=1) == ("(FALSE OR FALSE)", [])


def test_the_inbox_scope_keeps_to_the_signed_in_agency() -> None:
    assert access.agency_scope(JOBCENTER, first_param=3) == ("(r.agency_id = $3)", ["jobcenter-duisburg"])
    assert access.agency_scope(CM_HAMBORN, first_param=3) == ("FALSE", [])
