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
