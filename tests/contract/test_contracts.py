"""The published partner contract (docs/contracts/) agrees with the code and stays backward compatible."""

from __future__ import annotations

import copy
import json

import pytest

from knotenpunkt.events import ReferralAccepted, ReferralSent
from tools import contracts


def test_the_committed_contract_is_what_the_code_generates() -> None:
    assert contracts.stale_files() == [], "run `uv run python -m tools.contracts` and commit the result"


def test_the_code_is_compatible_with_the_released_contract() -> None:
    released = contracts.released_schemas()
    assert released, "docs/contracts/released/ is empty: run `uv run python -m tools.contracts --release` once"
    assert contracts.incompatibilities(released, contracts.event_schemas()) == []


def test_check_mode_fails_on_a_stale_file(monkeypatch: pytest.MonkeyPatch) -> None:
    real = contracts.rendered

    def changed() -> dict:
        files = real()
        files[contracts.ASYNCAPI_FILE] += " "
        return files

    monkeypatch.setattr(contracts, "rendered", changed)
    assert contracts.main(["--check"]) == 1


def test_there_is_a_schema_for_every_event_an_agency_reads_or_writes() -> None:
    names = set(contracts.event_schemas())
    for event in (*contracts.AGENCY_READS, *contracts.AGENCY_WRITES):
        assert f"{event.event_type}.json" in names
    sent = contracts.event_schemas()[f"{ReferralSent.event_type}.json"]
    assert sent["x-cloudevents-type"] == ReferralSent.event_type
    assert {"referral_id", "client_id", "agency_id", "topic_code", "shared_data"} <= set(sent["properties"])


def test_the_asyncapi_document_describes_both_agency_topics_from_the_agencys_side() -> None:
    document = json.loads(contracts.ASYNCAPI_FILE.read_text())
    assert document["asyncapi"].startswith("3.")
    addresses = {name: channel["address"] for name, channel in document["channels"].items()}
    assert addresses == {
        "referrals": "knotenpunkt.agency.{agency_id}.referrals.v1",
        "answers": "knotenpunkt.agency.{agency_id}.answers.v1",
    }
    actions = {name: operation["action"] for name, operation in document["operations"].items()}
    assert actions == {"referrals": "receive", "answers": "send"}
    schemas = document["components"]["schemas"]
    for event in (*contracts.AGENCY_READS, *contracts.AGENCY_WRITES):
        assert event.__name__ in schemas


# --- the compatibility rules, on a released schema changed by hand ----------------------------


def released_accepted() -> dict:
    return contracts.event_schema(ReferralAccepted)


NAME = f"{ReferralAccepted.event_type}.json"


def check(changed: dict) -> list[str]:
    return contracts.incompatibilities({NAME: released_accepted()}, {NAME: changed})


def test_an_unchanged_schema_is_compatible() -> None:
    assert check(released_accepted()) == []


def test_a_new_optional_field_is_compatible() -> None:
    changed = released_accepted()
    changed["properties"]["note_code"] = {"type": "string", "default": None}
    assert check(changed) == []


def test_a_removed_field_is_incompatible() -> None:
    changed = released_accepted()
    del changed["properties"]["accepted_at"]
    changed["required"].remove("accepted_at")
    assert check(changed) == [f"{NAME}: field 'accepted_at' removed"]


def test_a_retyped_field_is_incompatible() -> None:
    changed = released_accepted()
    changed["properties"]["agency_id"] = {"type": "integer"}
    assert check(changed) == [f"{NAME}: field 'agency_id' retyped"]


def test_a_new_required_field_is_incompatible() -> None:
    changed = released_accepted()
    changed["properties"]["team_id"] = {"type": "string"}
    changed["required"].append("team_id")
    assert check(changed) == [f"{NAME}: new required field 'team_id'"]


def test_a_removed_event_is_incompatible() -> None:
    assert contracts.incompatibilities({NAME: released_accepted()}, {}) == [f"{NAME}: event removed"]


def test_an_enum_value_removed_is_incompatible_and_one_added_to_what_agencies_read_too() -> None:
    written = contracts.event_schemas()[f"{contracts.ReferralDeclined.event_type}.json"]
    fewer = copy.deepcopy(written)
    fewer["$defs"]["DeclineReason"]["enum"].remove("other")
    assert contracts.incompatibilities({"d": written}, {"d": fewer}) == ["d: field 'reason' lost values ['other']"]
    more = copy.deepcopy(written)
    more["$defs"]["DeclineReason"]["enum"].append("on_holiday")
    assert contracts.incompatibilities({"d": written}, {"d": more}) == []  # agencies write it, we read it
    read = copy.deepcopy(written) | {"x-direction": "agency reads"}
    read_more = copy.deepcopy(more) | {"x-direction": "agency reads"}
    assert contracts.incompatibilities({"d": read}, {"d": read_more}) == [
        "d: field 'reason' gained values ['on_holiday']"
    ]
