"""Events published by intake. No names, birth dates, addresses or phone numbers, ever."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from knotenpunkt import topics
from knotenpunkt.events.base import Event, register
from knotenpunkt.events.common import AgeBand, ServiceLine


@register
class ClientRegistered(Event):
    """A person was registered at an office and routed to a service line."""

    event_type = "knotenpunkt.intake.ClientRegistered.v1"
    topic = topics.CLIENTS

    registered_at: datetime = Field(description="When intake registered the person (UTC).")
    age_band: AgeBand = Field(description="Age band at registration; never the birth date.")
    service_line: ServiceLine = Field(
        description="The service line the routing rules chose (JMD 12 to under 27, MBE from 27)."
    )
    office_id: str = Field(description="Id of the office (regional support center) routed to.")
