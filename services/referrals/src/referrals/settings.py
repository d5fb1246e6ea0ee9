from pydantic import Field

from knotenpunkt.settings import ServiceSettings


class ReferralsSettings(ServiceSettings):
    service_name: str = Field(default="referrals", description="Name used in logs and consumer groups.")
    http_port: int = Field(default=8003, description="Port of the HTTP API.")
    database_url: str = Field(
        default="postgresql://referrals:referrals@127.0.0.1:5432/referrals",
        description="PostgreSQL DSN of referrals' own database.",
    )
