from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from intake.schemas import Registration

VALID = {"family_name": "Yılmaz", "given_name": "Ayşe", "birth_date": "2001-05-04", "office_id": "rsc-hamborn"}


def errors(**changes: object) -> dict[str, str]:
    with pytest.raises(ValidationError) as refused:
        Registration.model_validate({**VALID, **changes})
    return {".".join(map(str, error["loc"])): error["msg"] for error in refused.value.errors()}


def test_a_complete_registration_is_accepted() -> None:
    assert Registration.model_validate(VALID).birth_date == date(2001, 5, 4)


def test_birth_date_in_the_future_is_refused() -> None:
    assert "birth_date_in_future" in errors(birth_date=(date.today() + timedelta(days=1)).isoformat())["birth_date"]


def test_under_12_is_refused() -> None:
    assert "too_young" in errors(birth_date=(date.today() - timedelta(days=365 * 11)).isoformat())["birth_date"]


def test_blank_name_is_refused() -> None:
    assert set(errors(family_name="   ", given_name=None)) == {"family_name", "given_name"}
