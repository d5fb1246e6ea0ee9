"""Event contracts, one module per family. Importing this package registers every event."""

from knotenpunkt.events.base import Event, all_event_models, event_model
from knotenpunkt.events.cases import CaseOpened, ConsultationRecorded
from knotenpunkt.events.common import AgeBand, ServiceLine
from knotenpunkt.events.intake import ClientRegistered
from knotenpunkt.events.referrals import (
    DeclineReason,
    ReferralAccepted,
    ReferralDeclined,
    ReferralSent,
)

__all__ = [
    "AgeBand",
    "CaseOpened",
    "ClientRegistered",
    "ConsultationRecorded",
    "DeclineReason",
    "Event",
    "ReferralAccepted",
    "ReferralDeclined",
    "ReferralSent",
    "ServiceLine",
    "all_event_models",
    "event_model",
]
