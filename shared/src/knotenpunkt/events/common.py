"""Value types that several event families share."""

from __future__ import annotations

from enum import StrEnum


class ServiceLine(StrEnum):
    """Counselling service lines a person can be routed to."""

    JMD = "JMD"  # Jugendmigrationsdienst: young people from 12 up to 27
    MBE = "MBE"  # Migrationsberatung für erwachsene Zuwanderer: adults from 27


class AgeBand(StrEnum):
    """Coarse age bands: events never carry a birth date."""

    AGE_12_17 = "12-17"
    AGE_18_26 = "18-26"
    AGE_27_44 = "27-44"
    AGE_45_64 = "45-64"
    AGE_65_PLUS = "65+"
