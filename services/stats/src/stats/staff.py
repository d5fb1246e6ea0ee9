"""Staff positions (full-time equivalents) for "caseload per full-time post".

No event carries them yet, so they come from a seed file (KP_STAFF_SEED_PATH, else the demo
seed in stats/seed/staff.json) and replace the `staff` table at startup. When intake or a staff
directory publishes positions, this becomes a projection like the others.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from knotenpunkt.db import Database
from knotenpunkt.events import ServiceLine

DEMO_SEED = Path(__file__).parent / "seed" / "staff.json"


class Position(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    case_manager_id: str = Field(min_length=1, max_length=100)
    office_id: str = Field(min_length=1, max_length=100)
    service_line: ServiceLine
    fte: Decimal = Field(gt=0, le=Decimal("1.5"), decimal_places=2)


class StaffSeed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    staff: tuple[Position, ...]


def read_seed(path: str | Path = "") -> StaffSeed:
    return StaffSeed.model_validate(json.loads(Path(path or DEMO_SEED).read_text()))


async def load_staff(database: Database, seed: StaffSeed) -> int:
    """Replace the staff table by the seed, in one transaction."""
    async with database.transaction() as connection:
        await connection.execute("DELETE FROM public.staff")
        await connection.executemany(
            "INSERT INTO public.staff (case_manager_id, office_id, service_line, fte) VALUES ($1, $2, $3, $4)",
            [(p.case_manager_id, p.office_id, p.service_line.value, p.fte) for p in seed.staff],
        )
    return len(seed.staff)
