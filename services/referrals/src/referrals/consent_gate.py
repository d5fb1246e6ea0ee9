"""The consent gate, asked through the intake port: may this person's data go to this agency,
and which? Used when a referral is sent and when an inbox agency looks at its referrals."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from knotenpunkt.events import AgencyKind, SharedPersonData
from knotenpunkt.logging import get_logger
from referrals.domain import REFERRAL_CATEGORIES, require_consent, with_topic
from referrals.intake import IntakePort, IntakeUnavailable, NoSharingConsent, UnknownClient

log = get_logger("referrals")


@dataclass(frozen=True)
class Recipient:
    """The agency a person's data would go to, as the directory knows it."""

    agency_id: str
    kind: AgencyKind
    channel: str  # "kafka": the agency's own service reads its topic; "inbox": the web inbox


@dataclass(frozen=True)
class ConsentGate:
    intake: IntakePort
    enabled: bool = True

    async def consented_data(self, client_id: UUID, agency: Recipient) -> tuple[str | None, SharedPersonData | None]:
        """The consent relied on, and exactly the data it lets the agency see on its topic.

        Raises ConsentMissing / NoSharingConsent / UnknownClient (409) or IntakeUnavailable (503).
        """
        if not self.enabled:
            return None, None  # no consent was checked, so nothing personal is shared
        try:
            check = await self.intake.consent_check(client_id, agency.agency_id, agency.kind, REFERRAL_CATEGORIES)
        except IntakeUnavailable as error:
            log.warning("intake unavailable for the consent check", error=error.detail)
            raise
        if not check.granted:
            log.info("referral refused: no sharing consent", agency_id=agency.agency_id, reason=check.reason)
        require_consent(check)
        if agency.channel != "kafka":
            # Inbox agencies see the data live in the inbox (so a withdrawn consent stops it at
            # once); nothing personal is parked on a topic nobody reads.
            return check.consent_id, None
        shared = await self.intake.shared_data(client_id, agency.agency_id, agency.kind)
        return check.consent_id, with_topic(shared, check.categories)

    async def person(
        self, client_id: UUID, agency_id: str, kind: AgencyKind
    ) -> tuple[SharedPersonData | None, str | None]:
        """The personal data an inbox agency may see now, asked from intake at the moment of
        looking (a withdrawn or expired consent shows nothing), or why there is none."""
        if not self.enabled:
            return None, "no_consent"
        try:
            return await self.intake.shared_data(client_id, agency_id, kind), None
        except NoSharingConsent:
            return None, "no_consent"
        except UnknownClient:
            return None, "unknown_client"
        except IntakeUnavailable:
            return None, "intake_unavailable"
