"""Small-count suppression: primary, secondary along every line, sums and their parts."""

from __future__ import annotations

from stats.suppression import TOTAL, suppress


def rows_by(key: str, values: dict[str, int], measure: str = "cases_new") -> list[dict]:
    return [{key: name, measure: value} for name, value in values.items()]


def test_counts_from_one_to_the_threshold_are_hidden_zeros_and_larger_ones_are_not() -> None:
    rows = rows_by("office", {"a": 0, "b": 1, "c": 4, "d": 5, "e": 9})
    hidden = suppress(rows, {"cases_new": 19}, ["office"], ["cases_new"], threshold=4)
    assert hidden == {(1, "cases_new"), (2, "cases_new")}


def test_a_single_hidden_cell_takes_the_smallest_other_one_with_it() -> None:
    # 10 + 3 + 7 = 20: publishing 10, 7 and the total would give the 3 back.
    rows = rows_by("office", {"a": 10, "b": 3, "c": 7})
    hidden = suppress(rows, {"cases_new": 20}, ["office"], ["cases_new"], threshold=4)
    assert hidden == {(1, "cases_new"), (2, "cases_new")}


def test_with_only_zeros_beside_it_the_total_is_hidden() -> None:
    rows = rows_by("office", {"a": 0, "b": 3})
    hidden = suppress(rows, {"cases_new": 3}, ["office"], ["cases_new"], threshold=4)
    assert (1, "cases_new") in hidden and (TOTAL, "cases_new") in hidden


def test_every_line_of_a_two_way_table_hides_none_or_at_least_two() -> None:
    counts = {
        ("f", "12-17"): 2,
        ("f", "18-26"): 30,
        ("f", "27-44"): 40,
        ("m", "12-17"): 25,
        ("m", "18-26"): 35,
        ("m", "27-44"): 45,
    }
    rows = [{"gender": g, "age_band": a, "persons_counselled": n} for (g, a), n in counts.items()]
    hidden = suppress(rows, {"persons_counselled": 177}, ["gender", "age_band"], ["persons_counselled"], threshold=4)
    hidden_rows = {i for i, _ in hidden}
    for key in ("gender", "age_band"):
        for value in {row[key] for row in rows}:
            line = [i for i, row in enumerate(rows) if row[key] == value]
            assert len(set(line) & hidden_rows) != 1, (key, value, hidden)
    assert 0 in hidden_rows  # the 2 itself


def test_a_sum_is_hidden_with_its_parts_and_a_hidden_sum_hides_a_part() -> None:
    rows = [
        {"office": "a", "persons_counselled": 3, "family_members": 20, "persons_reached": 23},
        {"office": "b", "persons_counselled": 30, "family_members": 10, "persons_reached": 40},
        {"office": "c", "persons_counselled": 40, "family_members": 12, "persons_reached": 52},
    ]
    total = {"persons_counselled": 73, "family_members": 42, "persons_reached": 115}
    hidden = suppress(rows, total, ["office"], ["persons_counselled", "family_members", "persons_reached"], 4)
    # 3 is small; reached (23) would give it back with the family members (20), so it goes too.
    assert {(0, "persons_counselled"), (0, "persons_reached")} <= hidden
    for index in range(3):
        parts = {(index, "persons_counselled"), (index, "family_members")}
        if (index, "persons_reached") in hidden:
            assert parts & hidden, f"row {index}: a hidden sum with both parts published"
    for measure in ("persons_counselled", "family_members", "persons_reached"):
        assert len([i for i, m in hidden if m == measure and i != TOTAL]) != 1, measure


def test_a_median_is_hidden_with_the_count_it_is_computed_from() -> None:
    rows = [
        {"office": "a", "cases_closed": 3, "case_duration_median_days": 12.0},
        {"office": "b", "cases_closed": 30, "case_duration_median_days": 20.0},
        {"office": "c", "cases_closed": 8, "case_duration_median_days": 9.0},
    ]
    total = {"cases_closed": 41, "case_duration_median_days": 15.0}
    hidden = suppress(rows, total, ["office"], ["case_duration_median_days"], threshold=4)
    assert (0, "case_duration_median_days") in hidden
    assert (1, "case_duration_median_days") not in hidden


def test_threshold_zero_publishes_everything() -> None:
    rows = rows_by("office", {"a": 1, "b": 2})
    assert suppress(rows, {"cases_new": 3}, ["office"], ["cases_new"], threshold=0) == set()
