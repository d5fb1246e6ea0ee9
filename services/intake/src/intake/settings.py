from pydantic import Field

from knotenpunkt.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    service_name: str = Field(default="intake", description="Name used in logs and consumer groups.")
    http_port: int = Field(default=8001, description="Port of the HTTP API.")
    database_url: str = Field(
        default="postgresql://intake:intake@127.0.0.1:5432/intake",
        description="PostgreSQL DSN of intake's own database.",
    )
    consent_jobs_interval_s: float = Field(
        default=3600.0,
        description="How often intake expires consents and raises JMD-to-MBE handovers (seconds).",
    )
    # The data protection officer's questions across the services (GET /audit/trail, the export).
    cases_url: str = Field(
        default="http://127.0.0.1:8002",
        description="Base URL of cases' HTTP API: its audit entries and its part of a person's export.",
    )
    referrals_url: str = Field(
        default="http://127.0.0.1:8003",
        description="Base URL of referrals' HTTP API: its audit entries and its part of a person's export.",
    )
    stats_url: str = Field(
        default="http://127.0.0.1:8004",
        description="Base URL of stats' HTTP API: its audit entries.",
    )
    peers_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Longest wait for another service's audit entries or export part; after it the answer names "
        "the service as unavailable (audit trail) or incomplete (export).",
    )
