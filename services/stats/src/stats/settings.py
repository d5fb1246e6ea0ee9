from pydantic import Field

from knotenpunkt.settings import ServiceSettings


class StatsSettings(ServiceSettings):
    service_name: str = Field(default="stats", description="Name used in logs and consumer groups.")
    http_port: int = Field(default=8004, description="Port of the HTTP API.")
    database_url: str = Field(
        default="postgresql://stats:stats@127.0.0.1:5432/stats",
        description="PostgreSQL DSN of stats' own database.",
    )
