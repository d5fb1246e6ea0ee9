"""One projector per read model. Each is an idempotent upsert, safe in any arrival order."""

from stats.projections.cases import on_case_opened, on_consultation_recorded
from stats.projections.persons import on_client_registered
from stats.projections.referrals import on_referral_accepted, on_referral_declined, on_referral_sent

__all__ = [
    "on_case_opened",
    "on_client_registered",
    "on_consultation_recorded",
    "on_referral_accepted",
    "on_referral_declined",
    "on_referral_sent",
]
