"""Value types that several event families share."""

from __future__ import annotations

from enum import StrEnum


class ServiceLine(StrEnum):
    """Counselling service lines a person can be routed to (one person may be in several)."""

    JMD = "JMD"  # Jugendmigrationsdienst: young people from 12 up to 27
    MBE = "MBE"  # Migrationsberatung für erwachsene Zuwanderer: adults from 27
    REFUGEE = "REFUGEE"  # social counselling of refugees: unsecured residence status, any age
    KIM = "KIM"  # Kommunales Integrationsmanagement: cross-domain case management


class AgeBand(StrEnum):
    """Coarse age bands: events never carry a birth date."""

    AGE_12_17 = "12-17"
    AGE_18_26 = "18-26"
    AGE_27_44 = "27-44"
    AGE_45_64 = "45-64"
    AGE_65_PLUS = "65+"
    UNKNOWN = "unknown"


class Gender(StrEnum):
    FEMALE = "female"
    MALE = "male"
    DIVERSE = "diverse"
    NOT_STATED = "not_stated"


class AccessRoute(StrEnum):
    """How the person came to the office."""

    OPEN_OFFICE_HOURS = "open_office_hours"
    APPOINTMENT = "appointment"
    REFERRED_BY_PARTNER = "referred_by_partner"


class ConsentPurpose(StrEnum):
    COUNSELLING = "counselling"
    SHARING = "sharing"  # sharing with a named partner agency or an agency kind
    STATISTICS = "statistics"


class DataCategory(StrEnum):
    """Categories of personal data a consent covers; a partner receives only these."""

    NAME = "name"
    CONTACT = "contact"  # phone, e-mail, address
    BIRTH_DATE = "birth_date"
    RESIDENCE_STATUS = "residence_status"
    TOPIC = "topic"  # the counselling topic of a referral
    HEALTH = "health"
    FAMILY = "family"


class AgencyKind(StrEnum):
    JOBCENTER = "jobcenter"
    AUSLAENDERBEHOERDE = "auslaenderbehoerde"
    JUGENDAMT = "jugendamt"
    SOZIALAMT = "sozialamt"
    SCHULAMT = "schulamt"
    AGENTUR_FUER_ARBEIT = "agentur_fuer_arbeit"
    COURSE_PROVIDER = "course_provider"  # language or integration course provider
    IHK = "ihk"
    HANDWERKSKAMMER = "handwerkskammer"
    WELFARE_ORGANISATION = "welfare_organisation"
