from pydantic import Field

from knotenpunkt.settings import ServiceSettings


class ReferralsSettings(ServiceSettings):
    service_name: str = Field(default="referrals", description="Name used in logs and consumer groups.")
    http_port: int = Field(default=8003, description="Port of the HTTP API.")
    database_url: str = Field(
        default="postgresql://referrals:referrals@127.0.0.1:5432/referrals",
        description="PostgreSQL DSN of referrals' own database.",
    )
    intake_url: str = Field(
        default="http://127.0.0.1:8001",
        description="Base URL of intake's HTTP API (consent checks and the data shared with an agency).",
    )
    intake_timeout_s: float = Field(default=5.0, description="Longest wait for an answer from intake.")
    consent_gate_enabled: bool = Field(
        default=True,
        description="A referral needs the person's valid sharing consent (checked with intake). Turn off only "
        "for a system without intake's consent records: then no personal data is shared at all.",
    )
    referral_day_seconds: float = Field(
        default=86_400.0,
        gt=0,
        description="Length of one day of an agency's promised response time. Only tests lower it, so that "
        "reminders and expiries happen in seconds.",
    )
    deadline_check_interval_s: float = Field(
        default=30.0, gt=0, description="How often reminders and expiries of unanswered referrals are checked."
    )
    gap_suppression_threshold: int = Field(
        default=4,
        ge=0,
        description="Gap register counts from 1 to this number are answered as null (small-count suppression, as "
        "stats does for its figures: a count of one is a person); 0 answers every count.",
    )
