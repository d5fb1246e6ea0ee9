"""The consent gate, asked through the intake port: may this person's data go to this agency,
and which? Used when a referral is sent and when an inbox agency looks at its referrals."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from knotenpunkt.events import AgencyKind, SharedPersonData
from knotenpunkt.logging import get_logger
from referrals.domain import REFERRAL_CATEGORIES, require_consent, with_topic
from referrals.intake import IntakePort, IntakeRefused, IntakeUnavailable, NoSharingConsent, UnknownClient

log = get_logger("referrals")


@dataclass(frozen=True)
class Recipient:
    """The agency a person's data would go to, as the directory knows it."""

    agency_id: str
    kind: AgencyKind
    channel: str  # "kafka": the agency's own service reads its topic; "inbox": the web inbox


@dataclass(frozen=True)
class Consented:
    """What the gate let through for one referral."""

    consent_id: str | None
    # The categories the person's valid consents cover for this agency (kept with the referral for
    # the person's own data export); empty when the gate is off and nothing was checked.
    categories: tuple[str, ...] = ()
    # The values for the agency's own topic (Kafka agencies only; never stored by referrals).
    shared: SharedPersonData | None = None
    checked: bool = True


@dataclass(frozen=True)
class ConsentGate:
    intake: IntakePort
    enabled: bool = True

    async def consented_data(self, client_id: UUID, agency: Recipient) -> Consented:
        """The consent relied on, and exactly the data it lets the agency see on its topic.

        Asked on behalf of the person sending the referral (intake sees them, via referrals).
        Raises ConsentMissing / NoSharingConsent / UnknownClient (409), IntakeRefused (403) or
        IntakeUnavailable (503).
        """
        if not self.enabled:
            # No consent was checked, so nothing personal is shared.
            return Consented(consent_id=None, checked=False)
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
            return Consented(check.consent_id, tuple(check.categories))
        shared = with_topic(await self.intake.shared_data(client_id, agency.agency_id, agency.kind), check.categories)
        return Consented(check.consent_id, tuple(shared.categories), shared)

    async def person(
        self, client_id: UUID, agency_id: str, kind: AgencyKind
    ) -> tuple[SharedPersonData | None, str | None]:
        """The personal data an inbox agency may see now, asked from intake at the moment of
        looking (a withdrawn or expired consent shows nothing), or why there is none. Asked on
        behalf of the signed-in agency, so intake can check it is that agency's data."""
        if not self.enabled:
            return None, "no_consent"
        try:
            return await self.intake.shared_data(client_id, agency_id, kind), None
        except NoSharingConsent:
            return None, "no_consent"
        except UnknownClient:
            return None, "unknown_client"
        except IntakeRefused:
            return None, "intake_refused"
        except IntakeUnavailable:
            return None, "intake_unavailable"
