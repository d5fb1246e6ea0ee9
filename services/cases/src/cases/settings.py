from pydantic import Field

from knotenpunkt.settings import ServiceSettings


class CasesSettings(ServiceSettings):
    service_name: str = Field(default="cases", description="Name used in logs and consumer groups.")
    http_port: int = Field(default=8002, description="Port of the HTTP API.")
    database_url: str = Field(
        default="postgresql://cases:cases@127.0.0.1:5432/cases",
        description="PostgreSQL DSN of cases' own database.",
    )
    intake_url: str = Field(
        default="http://127.0.0.1:8001",
        description="Base URL of intake's HTTP API; the case overview fetches the person summary there.",
    )
    intake_timeout_s: float = Field(
        default=3.0,
        description="Longest wait for intake's answer; after it the overview comes without the person summary.",
    )
