"""Events for tests: a valid one in a line, with unique ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from knotenpunkt.envelope import Envelope
from knotenpunkt.events import ClientRegistered
from knotenpunkt.events.common import AgeBand, ServiceLine


def registered(office: str = "rsc-hamborn") -> Envelope:
    """A new person's ClientRegistered (MBE, 27-44) in its envelope."""
    event = ClientRegistered(
        client_id=uuid.uuid4(),
        registered_at=datetime.now(UTC),
        age_band=AgeBand.AGE_27_44,
        service_line=ServiceLine.MBE,
        office_id=office,
    )
    return Envelope(event=event, source="test")
