"""Response shapes of the stats API. Counts only; no person is identifiable in any of them:
every count from 1 to the suppression threshold (and every cell that would give one back) is
published as null.

The CSV and XLSX forms of a report are files, not models; `ReportAnswer` is its JSON form.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

# A cell of a row whose columns depend on the query: a key (a period label or a dimension's
# value, null where unknown) or a measure (a count, a sum, a ratio; null where there is none).
Cell = str | int | float | None
# A cell of a published report row: as `Cell`, plus `suppressed`, the list of hidden columns.
ReportCell = str | int | float | list[str] | None


class Suppression(BaseModel):
    """The small-count suppression applied to an answer."""

    threshold: int = Field(description="Counts from 1 to this number are not published.")
    rule: str = Field(description="The rule, in words.")


# --- GET /figures ------------------------------------------------------------------------------


class OpenCases(BaseModel):
    """Cases open now in one service line and office."""

    service_line: str | None = Field(description="Service line (JMD, MBE, REFUGEE, KIM); null if not yet known.")
    office_id: str | None = Field(description="Office running the cases; null if not yet known.")
    cases: int | None = Field(description="Number of open cases; null where suppressed.")


class ReferralCounts(BaseModel):
    """Referrals to partner agencies by what happened to them (a referral counts in every step it reached)."""

    sent: int | None = Field(description="Referrals sent to an agency.")
    accepted: int | None = Field(description="Referrals the agency accepted.")
    declined: int | None = Field(description="Referrals the agency declined.")
    completed: int | None = Field(description="Referrals the agency reported as completed.")
    expired: int | None = Field(description="Referrals left unanswered past their deadline.")
    withdrawn: int | None = Field(description="Referrals withdrawn.")


class Figures(BaseModel):
    """Headline figures of the whole network, all time. A count from 1 to the threshold, and a
    figure that would give one back, is null and named in `suppressed`."""

    persons_registered: int | None = Field(description="Persons registered at intake.")
    open_cases: list[OpenCases] = Field(description="Open cases by service line and office.")
    open_cases_total: int | None = Field(description="All open cases (the sum of `open_cases`).")
    cases_opened: int | None = Field(description="Cases ever opened.")
    cases_closed: int | None = Field(description="Cases closed now (closed, and not reopened since).")
    consultations: int | None = Field(description="Consultations recorded.")
    family_members_counselled: int | None = Field(description="Family members counselled alongside, summed.")
    unique_persons_counselled: int | None = Field(
        description="Distinct persons with at least one consultation (merged duplicate records count once)."
    )
    referrals: ReferralCounts = Field(description="Referrals by outcome.")
    unmet_needs: int | None = Field(description="Needs no agency could take on (no capacity, or a referral expired).")
    handovers_due: int | None = Field(description="JMD to MBE handovers due (a young person turned 27).")
    suppressed: list[str] = Field(
        description="The figures published as null (`referrals.declined`, `open_cases[JMD/rsc-hamborn]`, ...)."
    )
    suppression: Suppression = Field(description="How small counts were suppressed.")


# --- GET /figures/catalogue --------------------------------------------------------------------


class MeasureInfo(BaseModel):
    """One measure of the catalogue."""

    description: str = Field(description="What the measure counts.")
    dimensions: list[str] = Field(description="Dimensions it can be broken down and filtered by.")


class Catalogue(BaseModel):
    """What `/figures/query` can be asked for."""

    measures: dict[str, MeasureInfo] = Field(description="Measures by name.")
    dimensions: dict[str, str] = Field(description="Dimensions by name, with a description of each.")
    periods: list[str] = Field(description="Periods a periodic measure can be counted by.")


# --- GET /figures/query ------------------------------------------------------------------------


class FiguresQueryResult(BaseModel):
    """Measures broken down by dimensions and period.

    The columns of `rows` depend on the query, so a row is a flexible `dict[str, ...]`: one
    entry per key (`period` first if asked for, then the `by` dimensions), one per measure,
    and with `growth=true` one `<measure>_growth_pct` per measure (null where the previous
    period had nothing to compare with), and `suppressed`. Small counts are suppressed as in
    the reports, against the total the same query without `by` answers.
    """

    measures: list[str] = Field(description="The measures asked for, in order.")
    keys: list[str] = Field(description="The key columns of each row: `period` (if asked for), then the dimensions.")
    rows: list[dict[str, ReportCell]] = Field(
        description="One row per combination of keys: key values, measure values and growth percentages "
        "(null where suppressed), and `suppressed`, the list of the row's columns published as null."
    )
    suppression: Suppression = Field(description="How small counts were suppressed.")


# --- GET /reports and GET /reports/{name} ------------------------------------------------------


class ReportSummary(BaseModel):
    """A report definition, as listed."""

    name: str = Field(description="Name to fetch it by: `/reports/{name}`.")
    version: int = Field(description="Version of the definition (part of the file name of an export).")
    title: str = Field(description="Title, in the language asked for.")
    description: str = Field(description="What the report is for, in the language asked for.")
    tables: list[str] = Field(description="Ids of its tables.")


class ReportTable(BaseModel):
    """One table of a report.

    The columns of a row depend on the table's definition, so `rows` and `total` are flexible
    `dict[str, ...]`: one entry per key, one per column (null where suppressed), and
    `suppressed`, the list of the row's columns published as null.
    """

    id: str = Field(description="Id of the table within the report.")
    title: str = Field(description="Title, in the language asked for.")
    keys: list[str] = Field(description="Key columns of each row: `period` (if any), then the dimensions.")
    columns: list[str] = Field(description="Value columns: the measures, then `<measure>_growth_pct` if any.")
    rows: list[dict[str, ReportCell]] = Field(description="One row per combination of keys.")
    total: dict[str, ReportCell] = Field(description="The total over all rows (keys null).")


class ReportAnswer(BaseModel):
    """A report for one year, as JSON."""

    report: str = Field(description="Name of the report definition.")
    version: int = Field(description="Version of the report definition.")
    title: str = Field(description="Title, in the language asked for.")
    description: str = Field(description="What the report is for, in the language asked for.")
    year: int = Field(description="The reporting year.")
    filters: dict[str, list[str]] = Field(
        description="Dimension values the report is limited to (snapshot tables are not filtered)."
    )
    suppression: Suppression = Field(description="How small counts were suppressed.")
    tables: list[ReportTable] = Field(description="The tables, in the definition's order.")
