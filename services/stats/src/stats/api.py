"""Figures for coordinators and funders. Counts only; no person is identifiable here.

Who may ask: every route needs `Action.FIGURES_READ` (coordinator and office lead; see
knotenpunkt.policy). The catalogue too: it holds no counts, but it is the map of what the
figures can tell, and nobody without the figures needs it. Stats has no operational HTTP route:
the rebuild is a command on the host (`python -m stats.rebuild`), so no REFERENCE_WRITE or
OPERATIONS_READ route here.

What is answered: every count goes through small-count suppression (stats.suppression), the
headline figures and the free query as much as the reports: no answer holds a count from 1 to
the threshold, nor a figure that gives one back from the totals in the same answer (issue 9:
the query once answered 198 cells of count 1 to anyone).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any, TypeVar

import asyncpg
from fastapi import APIRouter, Depends, Query, Request, Response

from knotenpunkt.db import Database
from knotenpunkt.errors import Invalid, NotFound
from knotenpunkt.i18n import negotiate, register_messages
from knotenpunkt.identity import allow
from knotenpunkt.policy import Action
from knotenpunkt.projection import PROJECTION_TRANSIENT_ERRORS
from stats import export, measures, queries, readmodel
from stats.reports import ReportDefinition, build
from stats.schemas import (
    Catalogue,
    Figures,
    FiguresQueryResult,
    MeasureInfo,
    OpenCases,
    ReferralCounts,
    ReportAnswer,
    ReportSummary,
    Suppression,
)
from stats.suppression import RULE, TOTAL, published_row, small, suppress

T = TypeVar("T")

register_messages(
    {
        "unknown_measure": {
            "de": "Unbekannte Kennzahl „{value}“. Erlaubt sind: {allowed}.",
            "en": "Unknown measure '{value}'. Allowed: {allowed}.",
        },
        "unknown_dimension": {
            "de": "Unbekannte oder hier nicht mögliche Aufschlüsselung „{value}“. Erlaubt sind: {allowed}.",
            "en": "Unknown or here impossible breakdown '{value}'. Allowed: {allowed}.",
        },
        "duplicate_dimension": {
            "de": "Jede Aufschlüsselung darf nur einmal vorkommen.",
            "en": "Each breakdown may appear only once.",
        },
        "unknown_period": {
            "de": "Unbekannter Zeitraum „{value}“. Erlaubt sind: {allowed}.",
            "en": "Unknown period '{value}'. Allowed: {allowed}.",
        },
        "no_period": {
            "de": "Diese Kennzahlen sind ein Stand von heute und lassen sich nicht nach „{value}“ aufschlüsseln.",
            "en": "These measures are a snapshot of now and cannot be broken down by '{value}'.",
        },
        "growth_needs_period": {
            "de": "Die Entwicklung zum Vorzeitraum braucht einen Zeitraum (period) und einen Beginn (from).",
            "en": "Growth against the previous period needs a period and a start (from).",
        },
        "range_reversed": {
            "de": "Das Ende liegt vor dem Beginn.",
            "en": "The end lies before the start.",
        },
        "unknown_parameter": {
            "de": "Unbekannter Parameter „{value}“. Erlaubt sind: {allowed}.",
            "en": "Unknown parameter '{value}'. Allowed: {allowed}.",
        },
        "unknown_format": {
            "de": "Unbekanntes Format „{value}“. Erlaubt sind: {allowed}.",
            "en": "Unknown format '{value}'. Allowed: {allowed}.",
        },
    }
)

FORMATS = ("json", "csv", "xlsx")
_QUERY_PARAMETERS = ("measures", "by", "period", "from", "to", "growth")


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


async def _read(database: Database, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Read in one snapshot; a rebuild swapping the tables in at that moment costs a retry."""
    for attempt in range(1, 4):
        try:
            async with readmodel.reading(database) as connection:
                return await work(connection)
        except PROJECTION_TRANSIENT_ERRORS:
            if attempt == 3:
                raise
            await asyncio.sleep(0.1 * attempt)
    raise AssertionError("unreachable")


def build_router(database: Database, definitions: dict[str, ReportDefinition], suppression_threshold: int) -> APIRouter:
    # Anonymous figures and reports: the coordinator's and office leads' permission.
    router = APIRouter(tags=["figures"], dependencies=[Depends(allow(Action.FIGURES_READ))])
    rule = Suppression(threshold=suppression_threshold, rule=RULE)

    @router.get("/figures", summary="Headline figures of the network (small counts suppressed)")
    async def figures() -> Figures:
        async def work(connection: asyncpg.Connection) -> Figures:
            persons = await connection.fetchval("SELECT count(*) FROM persons WHERE registered_at IS NOT NULL")
            open_cases = await connection.fetch(
                "SELECT service_line, office_id, count(*) AS cases FROM cases "
                "WHERE opened_at IS NOT NULL AND effective_closed_at IS NULL "
                "GROUP BY service_line, office_id ORDER BY service_line, office_id"
            )
            cases = await connection.fetchrow(
                "SELECT count(opened_at) AS opened, count(effective_closed_at) AS closed FROM cases"
            )
            consultations = await connection.fetchrow(
                "SELECT count(*) AS consultations, coalesce(sum(family_members_counselled), 0) AS family_members, "
                "count(DISTINCT coalesce(a.client_id, c.client_id)) AS unique_persons FROM consultations c "
                "LEFT JOIN client_aliases a ON a.merged_client_id = c.client_id"
            )
            referrals = await connection.fetchrow(
                "SELECT count(sent_at) AS sent, count(accepted_at) AS accepted, count(declined_at) AS declined, "
                "count(completed_at) AS completed, count(expired_at) AS expired, count(withdrawn_at) AS withdrawn "
                "FROM referrals"
            )
            unmet = await connection.fetchval("SELECT count(*) FROM unmet_needs")
            handovers = await connection.fetchval("SELECT count(*) FROM handovers")
            return headline(
                persons_registered=persons,
                open_cases=[dict(row) for row in open_cases],
                cases=dict(cases),
                consultations=dict(consultations),
                referrals=dict(referrals),
                unmet_needs=unmet,
                handovers_due=handovers,
                threshold=suppression_threshold,
            )

        return await _read(database, work)

    @router.get("/figures/catalogue", summary="Measures, breakdowns and periods the figures can be asked for")
    async def catalogue() -> Catalogue:
        return Catalogue(
            measures={
                name: MeasureInfo(description=m.description, dimensions=measures.allowed_dimensions((name,)))
                for name, m in measures.MEASURES.items()
            },
            dimensions=measures.DIMENSIONS,
            periods=list(measures.PERIODS),
        )

    @router.get(
        "/figures/query",
        summary="Measures broken down by dimensions and period",
        description="Any dimension may also be a filter: `?service_line=MBE,JMD`. Unknown measures, dimensions, "
        "periods or parameters are answered 422 with the allowed values.",
    )
    async def query(
        request: Request,
        measures_: Annotated[str, Query(alias="measures", description="Comma-separated measures.")],
        by: Annotated[str | None, Query(description="Comma-separated dimensions.")] = None,
        period: Annotated[str | None, Query(description="day, month, quarter or year.")] = None,
        start: Annotated[date | None, Query(alias="from", description="First day (inclusive).")] = None,
        end: Annotated[date | None, Query(alias="to", description="Last day (inclusive).")] = None,
        growth: Annotated[bool, Query(description="Add `<measure>_growth_pct` against the previous period.")] = False,
    ) -> FiguresQueryResult:
        filters: dict[str, tuple[str, ...]] = {}
        problems: list[tuple[str, str, dict[str, Any]]] = []
        for name, value in request.query_params.items():
            if name in _QUERY_PARAMETERS:
                continue
            if name in measures.DIMENSIONS:
                filters[name] = _split(value)
            else:
                allowed = ", ".join([*_QUERY_PARAMETERS, *measures.DIMENSIONS])
                problems.append((name, "unknown_parameter", {"value": name, "allowed": allowed}))
        wanted = measures.Query(
            measures=_split(measures_), by=_split(by), period=period, start=start, end=end, filters=filters
        )
        problems += measures.query_problems(wanted)
        if growth and not (period and start):
            problems.append(("growth", "growth_needs_period", {}))
        if problems:
            raise Invalid.at(problems)
        rows, hidden = await _read(
            database, lambda connection: queries.suppressed(connection, wanted, suppression_threshold, growth)
        )
        # Only what was asked for: the measures counted alongside (bases, parts) are not published.
        columns = [*wanted.measures, *(f"{name}_growth_pct" for name in wanted.measures if growth)]
        return FiguresQueryResult(
            measures=list(wanted.measures),
            keys=list(wanted.keys),
            rows=[published_row(row, index, wanted.keys, columns, hidden) for index, row in enumerate(rows)],
            suppression=rule,
        )

    @router.get("/reports", summary="The report definitions")
    async def reports(request: Request) -> list[ReportSummary]:
        language = negotiate(request.headers.get("accept-language"))
        return [
            ReportSummary(
                name=d.name,
                version=d.version,
                title=d.title.pick(language),
                description=d.description.pick(language),
                tables=[t.id for t in d.tables],
            )
            for d in definitions.values()
        ]

    @router.get(
        "/reports/{name}",
        summary="A report for one year, as JSON, CSV or XLSX",
        description="The format comes from `?format=` or the Accept header (text/csv, "
        f"{export.XLSX_MEDIA_TYPE}); JSON otherwise. Small counts are suppressed.",
        response_model=ReportAnswer,
        responses={200: {"content": {"text/csv": {}, export.XLSX_MEDIA_TYPE: {}}}},
    )
    async def report(
        request: Request,
        name: str,
        year: Annotated[int, Query(ge=2000, le=2100, description="The reporting year.")],
        format_: Annotated[str | None, Query(alias="format", description="json, csv or xlsx.")] = None,
    ) -> Response | ReportAnswer:
        definition = definitions.get(name)
        if definition is None:
            available = ", ".join(definitions)
            raise NotFound(f"Bericht „{name}“ (vorhanden: {available})", f"Report '{name}' (available: {available})")
        chosen = _format(format_, request.headers.get("accept", ""))
        language = negotiate(request.headers.get("accept-language"))
        built = await _read(
            database, lambda connection: build(connection, definition, year, suppression_threshold, language)
        )
        filename = f"{definition.name}-{year}-v{definition.version}"
        if chosen == "csv":
            return Response(
                export.to_csv(built),
                media_type=export.CSV_MEDIA_TYPE,
                headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
            )
        if chosen == "xlsx":
            return Response(
                export.to_xlsx(built),
                media_type=export.XLSX_MEDIA_TYPE,
                headers={"Content-Disposition": f'attachment; filename="{filename}.xlsx"'},
            )
        return ReportAnswer.model_validate(built.as_json())

    return router


_OPEN_CASES_KEYS = ("service_line", "office_id")


def headline(
    persons_registered: int,
    open_cases: list[dict[str, Any]],
    cases: dict[str, int],
    consultations: dict[str, int],
    referrals: dict[str, int],
    unmet_needs: int,
    handovers_due: int,
    threshold: int,
) -> Figures:
    """The headline figures as published: small counts and what would give them back are null.

    Open cases by service line and office are a table like a report's (secondary suppression
    along its lines and against its total). Cases opened = open now + closed now (all but the
    odd case whose closing arrived before its opening), so when either part is hidden the sum
    is hidden too: one hidden part could otherwise be computed from the other two. Every other
    figure is a count of its own and hidden when small."""
    open_rows = [{**row, "open_cases_now": row["cases"]} for row in open_cases]
    open_total = sum(row["cases"] for row in open_cases)
    hidden_open = suppress(open_rows, {"open_cases_now": open_total}, _OPEN_CASES_KEYS, ("open_cases_now",), threshold)
    values: dict[str, int] = {
        "persons_registered": persons_registered,
        "open_cases_total": open_total,
        "cases_opened": cases["opened"],
        "cases_closed": cases["closed"],
        "consultations": consultations["consultations"],
        "family_members_counselled": consultations["family_members"],
        "unique_persons_counselled": consultations["unique_persons"],
        "unmet_needs": unmet_needs,
        "handovers_due": handovers_due,
        **{f"referrals.{name}": value for name, value in referrals.items()},
    }
    suppressed = {name for name, value in values.items() if small(value, threshold)}
    if (TOTAL, "open_cases_now") in hidden_open:
        suppressed.add("open_cases_total")
    if suppressed & {"open_cases_total", "cases_closed"} and values["cases_opened"] > 0:
        suppressed.add("cases_opened")
    published = {name: None if name in suppressed else value for name, value in values.items()}
    rows = []
    for index, row in enumerate(open_rows):
        shown = published_row(row, index, _OPEN_CASES_KEYS, ("cases",), {(i, "cases") for i, _ in hidden_open})
        rows.append(OpenCases(service_line=row["service_line"], office_id=row["office_id"], cases=shown["cases"]))
        if shown["cases"] is None:
            suppressed.add(f"open_cases[{row['service_line']}/{row['office_id']}]")
    return Figures(
        persons_registered=published["persons_registered"],
        open_cases=rows,
        open_cases_total=published["open_cases_total"],
        cases_opened=published["cases_opened"],
        cases_closed=published["cases_closed"],
        consultations=published["consultations"],
        family_members_counselled=published["family_members_counselled"],
        unique_persons_counselled=published["unique_persons_counselled"],
        referrals=ReferralCounts(**{name: published[f"referrals.{name}"] for name in referrals}),
        unmet_needs=published["unmet_needs"],
        handovers_due=published["handovers_due"],
        suppressed=sorted(suppressed),
        suppression=Suppression(threshold=threshold, rule=RULE),
    )


def _format(requested: str | None, accept: str) -> str:
    if requested is not None:
        if requested not in FORMATS:
            raise Invalid("format", "unknown_format", value=requested, allowed=", ".join(FORMATS))
        return requested
    if "text/csv" in accept:
        return "csv"
    if export.XLSX_MEDIA_TYPE in accept:
        return "xlsx"
    return "json"
