"""The catalogue of figures: facts (read-model tables), dimensions, measures and periods, and
the SQL that counts a set of measures broken down by dimensions.

Everything here is data about the read models; reports (stats/reports/*.json) and the query
endpoint name measures and dimensions from this catalogue, so a new report needs no code.
Times are bucketed in the network's local time (Europe/Berlin): a consultation on New Year's
Eve counts in the old year.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

TIMEZONE = "Europe/Berlin"

PERIODS: dict[str, str] = {
    # period -> to_char pattern of its label
    "day": "YYYY-MM-DD",
    "month": "YYYY-MM",
    "quarter": 'YYYY-"Q"Q',
    "year": "YYYY",
}
_INTERVALS = {"day": "1 day", "month": "1 month", "quarter": "3 months", "year": "1 year"}

DIMENSIONS: dict[str, str] = {
    "service_line": "Service line (JMD, MBE, REFUGEE, KIM)",
    "office": "Office (regional support center)",
    "district": "City district of the person's address",
    "case_manager": "Staff id of the case manager",
    "topic": "Counselling topic code",
    "language": "Counselling language (ISO 639-1)",
    "age_band": "Age band",
    "gender": "Gender",
    "nationality": "First nationality (ISO 3166-1 alpha-2, XX stateless)",
    "residence_status": "Residence status category",
    "years_since_arrival": "Years between arrival in Germany and the fact (0, 1-2, 3-5, 6-10, 11+)",
    "agency": "Partner agency id",
    "agency_kind": "Kind of partner agency",
    "cause": "Cause of an unmet need (no_capacity, expired)",
    "close_reason": "Closing reason code of a case",
    "mode": "How a consultation took place",
}


def _local_day(column: str) -> str:
    return f"({column} AT TIME ZONE '{TIMEZONE}')::date"


def _person_dimensions(day: str, language: str = "p.counselling_language") -> dict[str, str]:
    """Dimensions from the person's attributes (joined as `p`)."""
    years = f"(extract(year FROM {day})::int - p.arrival_year)"
    return {
        "district": "coalesce(p.district, 'unknown')",
        "language": f"coalesce({language}, 'unknown')",
        "age_band": "coalesce(p.age_band, 'unknown')",
        "gender": "coalesce(p.gender, 'not_stated')",
        "nationality": "coalesce(p.nationalities[1], 'unknown')",
        "residence_status": "coalesce(p.residence_status, 'unknown')",
        "years_since_arrival": (
            f"CASE WHEN p.arrival_year IS NULL THEN 'unknown' WHEN {years} < 1 THEN '0' "
            f"WHEN {years} < 3 THEN '1-2' WHEN {years} < 6 THEN '3-5' WHEN {years} < 11 THEN '6-10' ELSE '11+' END"
        ),
    }


_PERSON_JOIN = (
    "LEFT JOIN persons p ON p.client_id = f.client_id LEFT JOIN client_aliases a ON a.merged_client_id = f.client_id"
)
# The person behind a fact, after merges of duplicate records.
PERSON = "coalesce(a.client_id, f.client_id)"


@dataclass(frozen=True)
class Fact:
    """A read-model table as a source of measures."""

    name: str
    source: str
    dimensions: Mapping[str, str]
    # The local day the fact happened (None: a snapshot of now, no period).
    day: str | None = None
    where: str = "TRUE"
    # Joins needed only by some dimensions (they multiply rows, e.g. one row per topic).
    dimension_joins: Mapping[str, str] = field(default_factory=dict)
    # Interval facts (open cases) count a row in every period its [start, end] overlaps.
    interval: tuple[str, str] | None = None


_CASE_DAY_OPENED = _local_day("f.opened_at")
_CASE_DAY_CLOSED = _local_day("f.effective_closed_at")

FACTS: dict[str, Fact] = {
    "consultations": Fact(
        name="consultations",
        source=f"consultations f {_PERSON_JOIN}",
        day="f.held_on",
        dimensions={
            "service_line": "f.service_line",
            "office": "f.office_id",
            "case_manager": "coalesce(f.case_manager_id, 'unassigned')",
            "topic": "t.topic",
            "mode": "f.mode",
            **_person_dimensions("f.held_on", "coalesce(f.language, p.counselling_language)"),
        },
        dimension_joins={"topic": "CROSS JOIN LATERAL unnest(f.topics) AS t(topic)"},
    ),
    "cases_opened": Fact(
        name="cases_opened",
        source=f"cases f {_PERSON_JOIN}",
        day=_CASE_DAY_OPENED,
        where="f.opened_at IS NOT NULL",
        dimensions={
            "service_line": "coalesce(f.service_line, 'unknown')",
            "office": "coalesce(f.office_id, 'unknown')",
            "case_manager": "coalesce(f.case_manager_id, 'unassigned')",
            **_person_dimensions(_CASE_DAY_OPENED),
        },
    ),
    "cases_closed": Fact(
        name="cases_closed",
        source=f"cases f {_PERSON_JOIN}",
        day=_CASE_DAY_CLOSED,
        where="f.effective_closed_at IS NOT NULL",
        dimensions={
            "service_line": "coalesce(f.service_line, 'unknown')",
            "office": "coalesce(f.office_id, 'unknown')",
            "case_manager": "coalesce(f.case_manager_id, 'unassigned')",
            "close_reason": "coalesce(f.close_reason, 'unknown')",
            **_person_dimensions(_CASE_DAY_CLOSED),
        },
    ),
    "cases_active": Fact(
        name="cases_active",
        source=f"cases f {_PERSON_JOIN}",
        where="f.opened_at IS NOT NULL",
        interval=(_CASE_DAY_OPENED, _CASE_DAY_CLOSED),
        dimensions={
            "service_line": "coalesce(f.service_line, 'unknown')",
            "office": "coalesce(f.office_id, 'unknown')",
            "case_manager": "coalesce(f.case_manager_id, 'unassigned')",
            **_person_dimensions(_CASE_DAY_OPENED),
        },
    ),
    "caseload": Fact(
        name="caseload",
        source="cases f",
        where="f.opened_at IS NOT NULL AND f.effective_closed_at IS NULL",
        dimensions={
            "service_line": "coalesce(f.service_line, 'unknown')",
            "office": "coalesce(f.office_id, 'unknown')",
            "case_manager": "coalesce(f.case_manager_id, 'unassigned')",
        },
    ),
    "staff": Fact(
        name="staff",
        source="staff f",
        dimensions={"service_line": "f.service_line", "office": "f.office_id", "case_manager": "f.case_manager_id"},
    ),
    "referrals": Fact(
        name="referrals",
        source=f"referrals f LEFT JOIN cases c ON c.case_id = f.case_id {_PERSON_JOIN}",
        day=_local_day("f.sent_at"),
        where="f.sent_at IS NOT NULL",
        dimensions={
            "agency": "f.agency_id",
            "topic": "coalesce(f.topic_code, 'unknown')",
            "office": "coalesce(f.office_id, 'unknown')",
            "service_line": "coalesce(c.service_line, 'unknown')",
            "case_manager": "coalesce(c.case_manager_id, 'unassigned')",
            **_person_dimensions(_local_day("f.sent_at")),
        },
    ),
    "unmet_needs": Fact(
        name="unmet_needs",
        source=f"unmet_needs f {_PERSON_JOIN}",
        day=_local_day("f.recorded_at"),
        dimensions={
            "topic": "f.topic_code",
            "agency_kind": "f.agency_kind",
            "office": "f.office_id",
            "cause": "f.cause",
            **_person_dimensions(_local_day("f.recorded_at")),
        },
    ),
    "handovers": Fact(
        name="handovers",
        source=f"handovers f {_PERSON_JOIN}",
        day="f.due_on",
        dimensions={
            "service_line": "f.from_service_line",
            "office": "coalesce(p.office_id, 'unknown')",
            **_person_dimensions("f.due_on"),
        },
    ),
    "plan_goals": Fact(
        name="plan_goals",
        source=f"plan_goals f LEFT JOIN cases c ON c.case_id = f.case_id {_PERSON_JOIN}",
        day=_local_day("f.set_at"),
        where="f.set_at IS NOT NULL",
        dimensions={
            "topic": "coalesce(f.topic_code, 'unknown')",
            "service_line": "coalesce(c.service_line, 'unknown')",
            "office": "coalesce(c.office_id, 'unknown')",
            "case_manager": "coalesce(c.case_manager_id, 'unassigned')",
            **_person_dimensions(_local_day("f.set_at")),
        },
    ),
}


def _days(start: str, end: str) -> str:
    return f"extract(epoch FROM ({end} - {start})) / 86400.0"


def _percentile(fraction: float, value: str) -> str:
    return f"percentile_cont({fraction}) WITHIN GROUP (ORDER BY {value})"


_ANSWER_HOURS = (
    "CASE WHEN coalesce(f.accepted_at, f.declined_at) IS NOT NULL "
    "THEN extract(epoch FROM (coalesce(f.accepted_at, f.declined_at) - f.sent_at)) / 3600.0 END"
)
_DURATION_DAYS = f"CASE WHEN f.opened_at IS NOT NULL THEN {_days('f.opened_at', 'f.effective_closed_at')} END"


@dataclass(frozen=True)
class Measure:
    """A figure. Additive measures are counts or sums (cells add up to totals, so they get
    small-count suppression); the others are suppressed with their `base` count."""

    name: str
    description: str
    fact: str | None = None
    sql: str | None = None
    additive: bool = True
    base: str | None = None
    # A sum of other measures (persons reached = persons counselled + family members).
    components: tuple[str, ...] = ()
    # numerator / denominator, both measures (possibly of different facts).
    ratio: tuple[str, str] | None = None
    decimals: int = 1


MEASURES: dict[str, Measure] = {
    m.name: m
    for m in [
        Measure("cases_new", "Cases opened in the period", "cases_opened", "count(*)"),
        Measure("cases_open", "Cases open at any time in the period", "cases_active", "count(DISTINCT f.case_id)"),
        Measure("cases_closed", "Cases closed in the period", "cases_closed", "count(*)"),
        Measure(
            "case_duration_median_days",
            "Median duration of the cases closed in the period, in days",
            "cases_closed",
            _percentile(0.5, _DURATION_DAYS),
            additive=False,
            base="cases_closed",
        ),
        Measure(
            "case_duration_p90_days",
            "90th percentile of the duration of the cases closed in the period, in days",
            "cases_closed",
            _percentile(0.9, _DURATION_DAYS),
            additive=False,
            base="cases_closed",
        ),
        Measure("consultations", "Consultations held", "consultations", "count(DISTINCT f.consultation_id)"),
        Measure(
            "persons_counselled",
            "Persons counselled (a person counselled in two offices or service lines counts in each)",
            "consultations",
            f"count(DISTINCT ({PERSON}, f.service_line, f.office_id))",
        ),
        Measure(
            "family_members",
            "Co-counselled family members",
            "consultations",
            "coalesce(sum(f.family_members_counselled), 0)",
        ),
        Measure(
            "persons_reached",
            "Persons counselled plus co-counselled family members",
            components=("persons_counselled", "family_members"),
        ),
        Measure(
            "unique_persons",
            "Distinct persons counselled, across offices and service lines (merged records once)",
            "consultations",
            f"count(DISTINCT {PERSON})",
        ),
        Measure(
            "consultations_per_case",
            "Consultations per case with a consultation in the period",
            "consultations",
            "count(DISTINCT f.consultation_id)::float / nullif(count(DISTINCT f.case_id), 0)",
            additive=False,
            base="consultations",
            decimals=2,
        ),
        Measure("open_cases_now", "Cases open now (caseload)", "caseload", "count(*)"),
        Measure("staff_fte", "Full-time equivalents of case managers", "staff", "sum(f.fte)::float", decimals=2),
        Measure(
            "caseload_per_fte",
            "Open cases per full-time post",
            ratio=("open_cases_now", "staff_fte"),
            additive=False,
            base="open_cases_now",
        ),
        Measure("referrals_sent", "Referrals sent in the period", "referrals", "count(*)"),
        Measure("referrals_accepted", "... of them accepted", "referrals", "count(f.accepted_at)"),
        Measure("referrals_declined", "... of them declined", "referrals", "count(f.declined_at)"),
        Measure("referrals_completed", "... of them completed", "referrals", "count(f.completed_at)"),
        Measure("referrals_expired", "... of them expired without an answer", "referrals", "count(f.expired_at)"),
        Measure("referrals_withdrawn", "... of them withdrawn", "referrals", "count(f.withdrawn_at)"),
        Measure(
            "answer_hours_median",
            "Median time from sending to the agency's answer, in hours",
            "referrals",
            _percentile(0.5, _ANSWER_HOURS),
            additive=False,
            base="referrals_sent",
        ),
        Measure(
            "answer_hours_p90",
            "90th percentile of the time to the agency's answer, in hours",
            "referrals",
            _percentile(0.9, _ANSWER_HOURS),
            additive=False,
            base="referrals_sent",
        ),
        Measure("unmet_needs", "Needs nobody could meet (gap register)", "unmet_needs", "count(*)"),
        Measure(
            "handovers_due",
            "JMD to MBE handovers due, by the month they are due in (the day is not kept: it is the 27th birthday)",
            "handovers",
            "count(*)",
        ),
        Measure("goals_set", "Integration plan goals set", "plan_goals", "count(*)"),
        Measure("goals_reached", "... of them reached", "plan_goals", "count(*) FILTER (WHERE f.status = 'reached')"),
    ]
}


def sql_measures(names: Sequence[str]) -> list[str]:
    """The measures that must be counted in SQL for these (components and ratio parts included),
    in a stable order without duplicates."""
    needed: list[str] = []

    def add(name: str) -> None:
        measure = MEASURES[name]
        parts = list(measure.components) + list(measure.ratio or ())
        if measure.base:
            parts.append(measure.base)
        for part in parts:
            add(part)
        if measure.sql is not None and name not in needed:
            needed.append(name)

    for name in names:
        add(name)
    return needed


def allowed_dimensions(measure_names: Sequence[str]) -> list[str]:
    """Dimensions every one of the measures can be broken down by."""
    facts = {MEASURES[name].fact for name in sql_measures(measure_names)}
    common = set(DIMENSIONS)
    for fact in facts:
        common &= set(FACTS[fact].dimensions)  # type: ignore[index]
    return [name for name in DIMENSIONS if name in common]


def periodic(measure_names: Sequence[str]) -> bool:
    """Whether the measures can be counted per period (snapshots of now cannot)."""
    return all(
        FACTS[MEASURES[name].fact].day is not None or FACTS[MEASURES[name].fact].interval is not None  # type: ignore[index]
        for name in sql_measures(measure_names)
    )


@dataclass(frozen=True)
class Query:
    """Measures broken down by dimensions (and optionally a period) over [start, end]."""

    measures: tuple[str, ...]
    by: tuple[str, ...] = ()
    period: str | None = None
    start: date | None = None
    end: date | None = None
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def keys(self) -> tuple[str, ...]:
        """The columns that identify a row: the period first, then the dimensions."""
        return (("period",) if self.period else ()) + self.by


def fact_sql(fact_name: str, measure_names: Sequence[str], query: Query) -> tuple[str, list[object]]:
    """One SELECT counting the measures of one fact: (sql, parameters)."""
    fact = FACTS[fact_name]
    args: list[object] = []

    def param(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    joins = [fact.dimension_joins[d] for d in (*query.by, *query.filters) if d in fact.dimension_joins]
    joins = list(dict.fromkeys(joins))
    where = [fact.where]
    select: list[str] = []
    source = fact.source
    if fact.interval is not None:
        opened, closed = fact.interval
        start = query.start or date(1970, 1, 1)
        end = query.end or date(2999, 12, 31)
        if query.period:
            series = (
                f"generate_series(date_trunc('{query.period}', {param(start)}::date), {param(end)}::date, "
                f"interval '{_INTERVALS[query.period]}') AS g(bucket)"
            )
            low = f"greatest(g.bucket::date, {param(start)}::date)"
            step = _INTERVALS[query.period]
            high = f"least((g.bucket + interval '{step}')::date, {param(end + timedelta(days=1))}::date)"
            source = f"{series} CROSS JOIN {fact.source}"
            select.append(f"to_char(g.bucket, '{PERIODS[query.period]}')")
        else:
            low, high = f"{param(start)}::date", f"{param(end + timedelta(days=1))}::date"
        where.append(f"{opened} < {high} AND ({closed} IS NULL OR {closed} >= {low})")
    elif fact.day is not None:
        if query.start is not None:
            where.append(f"{fact.day} >= {param(query.start)}::date")
        if query.end is not None:
            where.append(f"{fact.day} <= {param(query.end)}::date")
        if query.period:
            select.append(f"to_char({fact.day}, '{PERIODS[query.period]}')")
    for dimension in query.by:
        select.append(fact.dimensions[dimension])
    for dimension, values in query.filters.items():
        where.append(f"{fact.dimensions[dimension]} = ANY({param(list(values))}::text[])")
    keys = len(select)
    select += [f"{MEASURES[name].sql}" for name in measure_names]
    group = f" GROUP BY {', '.join(str(i + 1) for i in range(keys))}" if keys else ""
    sql = f"SELECT {', '.join(select)} FROM {source} {' '.join(joins)} WHERE {' AND '.join(where)}{group}"
    return sql, args


def previous_label(period: str, label: str) -> str:
    """The label of the period before (growth against the previous period)."""
    if period == "year":
        return str(int(label) - 1)
    if period == "quarter":
        year, quarter = int(label[:4]), int(label[-1])
        return f"{year - 1}-Q4" if quarter == 1 else f"{year}-Q{quarter - 1}"
    if period == "month":
        year, month = int(label[:4]), int(label[5:7])
        return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"
    return (date.fromisoformat(label) - timedelta(days=1)).isoformat()


def period_before(period: str, start: date) -> date:
    """The first day of the period before the one containing `start`."""
    if period == "year":
        return date(start.year - 1, 1, 1)
    if period == "quarter":
        first_month = (start.month - 1) // 3 * 3 + 1
        return date(start.year - 1, 10, 1) if first_month == 1 else date(start.year, first_month - 3, 1)
    if period == "month":
        return date(start.year - 1, 12, 1) if start.month == 1 else date(start.year, start.month - 1, 1)
    return start - timedelta(days=1)


def growth_pct(current: float | None, previous: float | None) -> float | None:
    """Growth against the previous period in percent; None where there is nothing to compare."""
    if current is None or not previous:
        return None
    return round((current - previous) / previous * 100, 1)


def query_problems(query: Query) -> list[tuple[str, str, dict[str, object]]]:
    """What is wrong with a query, as (field, message code, params); empty if it can run.

    Every problem names the allowed values, so the answer says how to ask instead.
    """
    problems: list[tuple[str, str, dict[str, object]]] = []
    unknown = [name for name in query.measures if name not in MEASURES]
    if not query.measures or unknown:
        problems.append(
            ("measures", "unknown_measure", {"value": ", ".join(unknown) or "-", "allowed": ", ".join(MEASURES)})
        )
        return problems
    allowed = allowed_dimensions(query.measures)
    for field_name, names in (("by", query.by), ("filters", tuple(query.filters))):
        for name in names:
            if name not in allowed:
                problems.append((field_name, "unknown_dimension", {"value": name, "allowed": ", ".join(allowed)}))
    if len(set(query.by)) != len(query.by):
        problems.append(("by", "duplicate_dimension", {}))
    if query.period is not None:
        if query.period not in PERIODS:
            problems.append(("period", "unknown_period", {"value": query.period, "allowed": ", ".join(PERIODS)}))
        elif not periodic(query.measures):
            problems.append(("period", "no_period", {"value": query.period}))
    if query.start and query.end and query.start > query.end:
        problems.append(("to", "range_reversed", {}))
    return problems


def period_label(period: str, day: date) -> str:
    if period == "year":
        return f"{day.year}"
    if period == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    if period == "month":
        return f"{day.year}-{day.month:02d}"
    return day.isoformat()
