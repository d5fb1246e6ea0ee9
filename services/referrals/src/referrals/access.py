"""Who may do what with referrals: the service's uses of the shared policy (knotenpunkt.policy),
as plain functions so that unit tests table-test them with `Actor.staff(...)`.

- Sending and withdrawing act on the person's case: its office now and its case manager
  (`known_cases`, kept current from CaseOpened, CaseAssigned and CaseTransferred).
- Reading a referral: the office that sent it, or the office that runs its case now (a case
  transferred to another office takes its open referrals along, decision in consumers.py).
- The web inbox: an agency sees and answers only what is addressed to it; the agency in the
  path must be the signed-in agency.
"""

from __future__ import annotations

from typing import Any

from knotenpunkt.errors import Forbidden
from knotenpunkt.policy import Action, Columns, Record, can, require, scope
from knotenpunkt.uow import Actor


def case_record(office_id: str | None, case_manager_id: str | None) -> Record:
    return Record(office_id=office_id, assigned_to=case_manager_id)


def require_on_case(actor: Actor, action: Action, office_id: str | None, case_manager_id: str | None) -> None:
    """Sending from a case or withdrawing a referral of it: 403 with the reason unless allowed."""
    require(actor, action, case_record(office_id, case_manager_id))


def require_read(actor: Actor, sent_by_office: str, case_office: str | None, case_manager_id: str | None) -> None:
    """Reading one referral: allowed through the sending office or the case's office now; else
    403 with the reason for the sending office."""
    if case_office is not None and can(actor, Action.REFERRAL_READ, case_record(case_office, case_manager_id)):
        return
    require(actor, Action.REFERRAL_READ, case_record(sent_by_office, case_manager_id))


def read_scope(actor: Actor, first_param: int) -> tuple[str, list[Any]]:
    """The SQL condition of the referrals (alias r, joined with known_cases c) the actor may read."""
    by_sender, sender_params = scope(
        actor, Action.REFERRAL_READ, Columns(office="r.office_id", assigned="c.case_manager_id"), first_param
    )
    by_case, case_params = scope(
        actor,
        Action.REFERRAL_READ,
        Columns(office="c.office_id", assigned="c.case_manager_id"),
        first_param + len(sender_params),
    )
    return f"({by_sender} OR {by_case})", [*sender_params, *case_params]


def require_own_agency(actor: Actor, action: Action, agency_id: str) -> None:
    """The inbox path's agency must be the signed-in agency (403 forbidden_agency otherwise)."""
    require(actor, action)
    if actor.agency_id != agency_id:
        raise Forbidden("forbidden_agency", action=action.value)


def require_addressed_to(actor: Actor, action: Action, referral_agency_id: str) -> None:
    """One referral in the inbox: only the agency it is addressed to reads or answers it."""
    require(actor, action, Record(agency_id=referral_agency_id))


def agency_scope(actor: Actor, first_param: int) -> tuple[str, list[Any]]:
    """The SQL condition of the referrals (alias r) addressed to the signed-in agency."""
    return scope(actor, Action.AGENCY_INBOX, Columns(agency="r.agency_id"), first_param)
