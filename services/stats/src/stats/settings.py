from pydantic import Field

from knotenpunkt.settings import ServiceSettings


class StatsSettings(ServiceSettings):
    service_name: str = Field(default="stats", description="Name used in logs and consumer groups.")
    http_port: int = Field(default=8004, description="Port of the HTTP API.")
    database_url: str = Field(
        default="postgresql://stats:stats@127.0.0.1:5432/stats",
        description="PostgreSQL DSN of stats' own database.",
    )
    report_suppression_threshold: int = Field(
        default=4,
        ge=0,
        description="Published reports suppress counts from 1 to this value (and the cells that would reveal them); "
        "0 turns suppression off.",
    )
    staff_seed_path: str = Field(
        default="",
        description="JSON file with the case managers' full-time equivalents (caseload per full-time post), loaded at "
        "startup; empty: the demo seed shipped with stats (stats/seed/staff.json).",
    )
    projection_batch_size: int = Field(
        default=5000, ge=1, description="Most events the stats projection applies in one transaction."
    )
