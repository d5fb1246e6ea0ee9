"""Demo data: realistic synthetic people sent through the real HTTP APIs, so a new user sees a
living system. Run against a running system (`make up`, then `make demo`).

People come from the common countries of origin with fitting names and languages, realistic
ages and households, spread over the three Duisburg offices; their consultations spread over
the last two years. Every name is invented from common first and family names; none is a
real person's record.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
from tqdm import tqdm

from knotenpunkt.testing.identity import Identity


@dataclass(frozen=True)
class Origin:
    country: str
    weight: int
    languages: tuple[str, ...]
    female: tuple[str, ...]
    male: tuple[str, ...]
    family: tuple[str, ...]
    statuses: tuple[str, ...]


ORIGINS = (
    Origin("SY", 22, ("ar", "ku"), ("Amal", "Rama", "Hiba", "Nour", "Fatima", "Lina"),
           ("Omar", "Ahmad", "Mohammad", "Khaled", "Yousef", "Hassan"),
           ("Haddad", "Al-Khatib", "Darwish", "Hamdan", "Suleiman", "Issa"),
           ("residence_permit", "asylum_procedure", "settlement_permit")),
    Origin("TR", 15, ("tr", "ku"), ("Ayşe", "Elif", "Zeynep", "Emine", "Fatma", "Merve"),
           ("Mehmet", "Mustafa", "Ahmet", "Emre", "Burak", "Can"),
           ("Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Öztürk"),
           ("settlement_permit", "residence_permit", "german_citizen")),
    Origin("RO", 14, ("ro",), ("Maria", "Elena", "Ioana", "Andreea", "Ana", "Mihaela"),
           ("Ion", "Andrei", "Alexandru", "Mihai", "Florin", "Gheorghe"),
           ("Popescu", "Ionescu", "Stan", "Dumitru", "Lungu", "Rusu"), ("eu_free_movement",)),
    Origin("BG", 12, ("bg", "tr"), ("Maria", "Ivana", "Desislava", "Elena", "Gergana"),
           ("Georgi", "Ivan", "Dimitar", "Nikolai", "Stefan"),
           ("Ivanov", "Petrova", "Georgiev", "Dimitrova", "Kolev"), ("eu_free_movement",)),
    Origin("UA", 12, ("uk", "ru"), ("Olena", "Iryna", "Tetiana", "Natalia", "Oksana"),
           ("Oleksandr", "Andrii", "Dmytro", "Serhii", "Mykola"),
           ("Shevchenko", "Kovalenko", "Bondarenko", "Tkachenko", "Melnyk"), ("residence_permit",)),
    Origin("AF", 8, ("fa", "ps"), ("Mariam", "Zahra", "Fatema", "Shabnam", "Parwana"),
           ("Ahmad", "Mohammad", "Ali", "Farid", "Mustafa"),
           ("Ahmadi", "Hakimi", "Rahimi", "Sultani", "Nazari"), ("asylum_procedure", "toleration", "residence_permit")),
    Origin("IQ", 7, ("ar", "ku"), ("Zainab", "Noor", "Sara", "Rusul"), ("Ali", "Hussein", "Mustafa", "Haider"),
           ("Al-Jabouri", "Hassan", "Kareem", "Abbas"), ("residence_permit", "toleration")),
    Origin("PL", 6, ("pl",), ("Anna", "Katarzyna", "Magdalena", "Agnieszka"), ("Piotr", "Tomasz", "Paweł", "Marek"),
           ("Nowak", "Kowalski", "Wiśniewski", "Wójcik"), ("eu_free_movement",)),
    Origin("RU", 4, ("ru",), ("Olga", "Svetlana", "Tatjana", "Irina"), ("Sergej", "Alexej", "Dmitri", "Wladimir"),
           ("Iwanow", "Smirnowa", "Kusnezow", "Popowa"), ("settlement_permit", "german_citizen")),
)  # fmt: skip

OFFICES = (("rsc-hamborn", "Hamborn"), ("rsc-hochfeld", "Hochfeld"), ("rsc-rheinhausen", "Rheinhausen"))
TOPICS = (
    "residence_law", "housing", "family_reunification", "debts", "health", "language_course", "school",
    "vocational_training", "work", "benefits", "recognition",
)  # fmt: skip
MODES = ("in_person", "in_person", "in_person", "phone", "video", "open_office_hours", "group")
AGENCY_KINDS = ("jobcenter", "auslaenderbehoerde", "jugendamt", "sozialamt")


def invent_person(rng: random.Random, today: date) -> tuple[Origin, dict[str, Any]]:
    origin = rng.choices(ORIGINS, weights=[o.weight for o in ORIGINS])[0]
    female = rng.random() < 0.52
    # Ages: many young people (JMD) and adults of working age, few over 65.
    age = int(rng.choices([rng.uniform(12, 27), rng.uniform(27, 45), rng.uniform(45, 65), rng.uniform(65, 80)],
                          weights=[35, 40, 20, 5])[0])  # fmt: skip
    born = today - timedelta(days=age * 365 + rng.randint(0, 364))
    office_id, district = rng.choice(OFFICES)
    household = []
    if age >= 20 and rng.random() < 0.6:
        household.append({"relation": "partner", "count": 1})
    if age >= 22 and rng.random() < 0.55:
        household.append({"relation": "child", "count": rng.randint(1, 4)})
    if age < 20:
        household.append({"relation": "parent", "count": rng.randint(1, 2)})
    person = {
        "family_name": rng.choice(origin.family),
        "given_name": rng.choice(origin.female if female else origin.male),
        "office_id": office_id,
        "district": district,
        "gender": "female" if female else "male",
        "nationalities": [origin.country],
        "languages": list(origin.languages) + (["de"] if rng.random() < 0.4 else []),
        "counselling_language": origin.languages[0] if rng.random() < 0.5 else "de",
        "household_members": household,
        "residence_status": rng.choice(origin.statuses),
        "arrival_date": (today - timedelta(days=rng.randint(60, 365 * 8))).isoformat(),
        "access_route": rng.choice(["open_office_hours", "appointment", "referred_by_partner"]),
        "confirm_new": True,  # synthetic people may share common names
    }
    # Refugees' papers often carry only the year of birth.
    if origin.country in ("AF", "SY", "IQ") and rng.random() < 0.3:
        person["birth_year"] = born.year
    else:
        person["birth_date"] = born.isoformat()
    return origin, person


async def populate(base: dict[str, str], people: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    today = date.today()
    counts = {"people": 0, "consultations": 0, "plan goals": 0, "consents": 0, "referrals": 0, "failed": 0}
    # Each office's lead does the work of their office (signed in through Keycloak, as the demo
    # user of `make up`): registering, consents, consultations, plan goals, referrals.
    identity = Identity(base["keycloak"])
    leads = {
        office: httpx.AsyncClient(timeout=20, auth=identity.auth(f"lead-{office.removeprefix('rsc-')}"))
        for office in ("rsc-hamborn", "rsc-hochfeld", "rsc-rheinhausen")
    }
    async with contextlib.AsyncExitStack() as stack:
        for client in leads.values():
            await stack.enter_async_context(client)
        any_lead = leads["rsc-hamborn"]
        topics = await _topic_codes(any_lead, base["cases"])
        agencies = await _agencies_by_kind(any_lead, base["referrals"])
        for _ in tqdm(range(people), desc="demo people", unit="person"):
            _origin, person = invent_person(rng, today)
            http = leads[person["office_id"]]
            registered = await http.post(f"{base['intake']}/clients", json=person)
            if registered.status_code != 201:
                counts["failed"] += 1
                continue
            client_id = registered.json()["client_id"]
            counts["people"] += 1
            consented_kind = None
            if rng.random() < 0.7:
                consented_kind = rng.choice(AGENCY_KINDS)
                consent = await http.post(
                    f"{base['intake']}/clients/{client_id}/consents",
                    json={"purpose": "sharing", "agency_kind": consented_kind,
                          "data_categories": ["name", "contact", "topic"], "text_version": "2026-01",
                          "given_on": today.isoformat()},
                )  # fmt: skip
                counts["consents"] += consent.status_code == 201
            case_id = await _case_of(http, base["cases"], client_id)
            if case_id is None:
                continue
            for _ in range(rng.choices([1, 2, 3, 4, 6], weights=[30, 30, 20, 12, 8])[0]):
                consultation = await http.post(
                    f"{base['cases']}/cases/{case_id}/consultations",
                    json={"held_on": (today - timedelta(days=rng.randint(0, 730))).isoformat(),
                          "duration_minutes": rng.choice([20, 30, 45, 60, 90]),
                          "topics": rng.sample(topics, rng.randint(1, 3)), "mode": rng.choice(MODES),
                          "language": person["counselling_language"], "interpreter_used": rng.random() < 0.15,
                          "family_members_counselled": rng.choice([0, 0, 0, 1, 2, 3])},
                )  # fmt: skip
                counts["consultations"] += consultation.status_code == 201
            if rng.random() < 0.5:
                goal = await http.post(
                    f"{base['cases']}/cases/{case_id}/plan/goals",
                    json={"topic_code": rng.choice(topics),
                          "target_date": (today + timedelta(days=rng.randint(30, 365))).isoformat()},
                )  # fmt: skip
                counts["plan goals"] += goal.status_code == 201
            candidates = agencies.get(consented_kind or "", [])
            if candidates and rng.random() < 0.6:
                agency = rng.choice(candidates)
                referral = await _refer_when_case_known(
                    http, base["referrals"], case_id, agency["agency_id"], rng.choice(agency["topics"] or topics)
                )
                counts["referrals"] += referral
    return counts


async def _agencies_by_kind(http: httpx.AsyncClient, referrals_url: str) -> dict[str, list[dict[str, Any]]]:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    answer = await http.get(f"{referrals_url}/agencies")
    if answer.status_code == 200:
        for agency in answer.json():
            by_kind.setdefault(agency["kind"], []).append(agency)
    return by_kind


async def _refer_when_case_known(
    http: httpx.AsyncClient, referrals_url: str, case_id: str, agency_id: str, topic_code: str
) -> bool:
    """Referrals learns the case from CaseOpened a moment after cases opened it: retry briefly."""
    for _ in range(100):
        answer = await http.post(
            f"{referrals_url}/referrals",
            json={"case_id": case_id, "agency_id": agency_id, "topic_code": topic_code},
            headers={"Idempotency-Key": f"demo-{case_id}-{agency_id}"},
        )
        if answer.status_code != 404:
            return answer.status_code == 201
        await asyncio.sleep(0.05)
    return False


async def _topic_codes(http: httpx.AsyncClient, cases_url: str) -> list[str]:
    """The city's own topic taxonomy, if cases serves it; else the common topics."""
    answer = await http.get(f"{cases_url}/topics")
    if answer.status_code == 200:
        codes = [topic["code"] for topic in answer.json() if topic.get("code")]
        if codes:
            return codes
    return list(TOPICS)


async def _case_of(http: httpx.AsyncClient, cases_url: str, client_id: str) -> str | None:
    """The case cases opened for the new person (it follows the registration event)."""
    for _ in range(100):
        answer = (await http.get(f"{cases_url}/cases", params={"client_id": client_id})).json()
        items = answer["items"] if isinstance(answer, dict) else answer
        if items:
            return items[0]["case_id"]
        await asyncio.sleep(0.05)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--intake", default="http://127.0.0.1:8001")
    parser.add_argument("--cases", default="http://127.0.0.1:8002")
    parser.add_argument("--referrals", default="http://127.0.0.1:8003")
    parser.add_argument("--keycloak", default="http://127.0.0.1:8080")
    args = parser.parse_args()
    urls = {"intake": args.intake, "cases": args.cases, "referrals": args.referrals, "keycloak": args.keycloak}
    counts = asyncio.run(populate(urls, args.people, args.seed))
    print(", ".join(f"{value} {name}" for name, value in counts.items()))


if __name__ == "__main__":
    main()
