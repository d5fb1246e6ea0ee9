"""The web app's start page, the data protection officer's pages and the admin's pages in a real
Chromium against the running system and Keycloak: a case manager sees their open case with the
person's name; the data protection officer sees who accessed that person, downloads the export
and erases another person through the confirmation step; the admin changes an office's opening
hours, which its case managers then see; a case manager is refused both areas. Every screen is
checked with axe-core."""

from __future__ import annotations

import asyncio
import json
import os
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page

from knotenpunkt.testing.fixtures import eventually
from knotenpunkt.testing.identity import Identity
from tests.e2e.browser import launch, serious_accessibility_problems, sign_in
from tools.stack import Stack

pytestmark = pytest.mark.e2e

# An agency answering through the web inbox (its staff sign in as agency-<id>).
INBOX_AGENCY = "sozialamt-duisburg"

# A page signed in as (username, web address), each in its own browser context.
SignedIn = Callable[[str, str], Awaitable[Page]]


def invented_name() -> str:
    """A name nobody else in the run has, so intake's duplicate check finds nothing similar."""
    rng = random.Random(uuid.uuid4().int)
    return "".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(4)).capitalize()


async def screenshot(page: Page, name: str) -> None:
    """Only when asked (KP_SCREENSHOTS=<folder>): a normal run writes nothing into the repository."""
    folder = os.environ.get("KP_SCREENSHOTS")
    if folder:
        # Playwright creates the folder.
        await page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async for running in launch():
        yield running


@pytest.fixture
async def person_of(browser: Browser) -> AsyncIterator[SignedIn]:
    """`await person_of("staff-hamborn-2")`: a page signed in as that person, in its own browser context."""
    contexts = []

    async def signed_in(username: str, web: str) -> Page:
        context = await browser.new_context(locale="de-DE", accept_downloads=True)
        contexts.append(context)
        page = await context.new_page()
        await sign_in(page, web, username)
        return page

    yield signed_in
    for context in contexts:
        await context.close()


async def register(stack: Stack, identity: Identity, office: str, family_name: str, given_name: str) -> str:
    async with httpx.AsyncClient(timeout=15, auth=identity.auth(f"intake-{office}")) as reception:
        answer = await reception.post(
            f"{stack.url('intake')}/clients",
            json={
                "family_name": family_name,
                "given_name": given_name,
                "birth_date": date(date.today().year - 35, 3, 9).isoformat(),
                "office_id": f"rsc-{office}",
                "confirm_new": True,
            },
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
    assert answer.status_code == 201, answer.text
    return answer.json()["client_id"]


async def registered_and_assigned(stack: Stack, identity: Identity, case_manager: str) -> tuple[str, str, str]:
    """A person registered at Hamborn, their case assigned to the case manager: (client id, name, case id)."""
    family_name, given_name = invented_name(), "Amira"
    client_id = await register(stack, identity, "hamborn", family_name, given_name)
    cases = stack.url("cases")
    async with httpx.AsyncClient(timeout=15, auth=identity.auth("lead-hamborn")) as lead:

        async def opened() -> dict | None:
            listed = (await lead.get(f"{cases}/cases", params={"client_id": client_id})).json()
            return listed[0] if listed else None

        case = await eventually(opened, interval_s=0.5)  # every poll is an audited read
        url = f"{cases}/cases/{case['case_id']}"
        assigned = await lead.post(
            f"{url}/assign",
            json={"case_manager_id": case_manager},
            headers={"If-Match": (await lead.get(url)).headers["ETag"]},
        )
        assert assigned.status_code == 200, assigned.text
    return client_id, f"{family_name}, {given_name}", case["case_id"]


async def declined_referral(stack: Stack, identity: Identity, client_id: str, case_id: str, manager: str) -> str:
    """The case manager refers the person to the social welfare office, which declines."""
    today = date.today().isoformat()
    async with (
        httpx.AsyncClient(timeout=15, auth=identity.auth(manager)) as case_manager,
        httpx.AsyncClient(timeout=15, auth=identity.auth(f"agency-{INBOX_AGENCY}")) as agency,
    ):
        consent = await case_manager.post(
            f"{stack.url('intake')}/clients/{client_id}/consents",
            json={"purpose": "sharing", "agency_kind": "sozialamt", "data_categories": ["name", "topic"],
                  "text_version": "2026-01", "given_on": today},
        )  # fmt: skip
        assert consent.status_code == 201, consent.text

        async def sent() -> dict | None:
            answer = await case_manager.post(
                f"{stack.url('referrals')}/referrals",
                json={"case_id": case_id, "agency_id": INBOX_AGENCY, "topic_code": "debts"},
            )
            return answer.json() if answer.status_code == 201 else None

        # Until referrals has heard of the case (and its assignment) it answers 404: asked again,
        # without an Idempotency-Key (a key would replay that first answer).
        referral = await eventually(sent, interval_s=0.5)
        declined = await agency.post(
            f"{stack.url('referrals')}/inbox/{INBOX_AGENCY}/referrals/{referral['referral_id']}/decline",
            json={"reason": "no_capacity"},
        )
        assert declined.status_code == 200, declined.text
    return referral["referral_id"]


async def test_start_page_audit_export_and_erasure(stack: Stack, identity: Identity, person_of: SignedIn) -> None:
    web = stack.url("web")
    client_id, name, case_id = await registered_and_assigned(stack, identity, "staff-hamborn-2")
    await declined_referral(stack, identity, client_id, case_id, "staff-hamborn-2")

    # The case manager's start page: the open case with the person's name, linked to the case;
    # the declined referral to follow up.
    manager = await person_of("staff-hamborn-2", web)
    cases_table = manager.get_by_test_id("my-cases")
    assert name in await cases_table.inner_text()
    assert await cases_table.get_by_role("link", name=name).get_attribute("href") == f"/cases/{case_id}"
    assert "RSC Hamborn" in await manager.get_by_test_id("office-hours").inner_text()
    to_follow_up = manager.get_by_test_id("referrals-action").locator("tr", has_text=name)
    assert "Abgelehnt – nachfassen" in await to_follow_up.inner_text()
    assert await serious_accessibility_problems(manager) == []
    await screenshot(manager, "start")

    # Followed up: marked as dealt with, it leaves the list.
    await to_follow_up.get_by_role("button", name="als erledigt markieren").click()
    await manager.wait_for_url(f"{web}/?done=dismissed")
    assert "Als erledigt markiert" in await manager.get_by_role("status").inner_text()
    assert await manager.get_by_test_id("referrals-action").locator("tr", has_text=name).count() == 0

    # The data protection officer: who accessed her (the case manager's list read her case).
    dpo = await person_of("dpo", web)
    await dpo.get_by_role("link", name="Zugriffe und Auskunft").first.click()
    await dpo.get_by_label("Kennung der Person").fill(client_id)
    await dpo.get_by_role("button", name="Zugriffe anzeigen").first.click()
    trail = dpo.get_by_test_id("audit-trail")
    assert await trail.locator('[data-actor="staff-hamborn-2"]').count() >= 1
    assert await trail.locator('[data-actor="intake-hamborn"]').count() >= 1  # who registered her
    assert "staff-hamborn-2" in await dpo.get_by_test_id("audit-who").inner_text()
    assert await serious_accessibility_problems(dpo) == []
    await screenshot(dpo, "dpo")

    # The export, as a file and as a readable page.
    async with dpo.expect_download() as downloading:
        await dpo.get_by_test_id("export-json").click()
    download = await downloading.value
    assert download.suggested_filename == f"auskunft-{client_id}.json"
    exported = json.loads(await asyncio.to_thread(Path(await download.path()).read_text))
    assert exported["client_id"] == client_id and exported["incomplete"] == []
    await dpo.get_by_test_id("export-html").click()
    assert name.split(",")[0] in await dpo.locator("body").inner_text()

    # Another person, erased through the confirmation step; a wrong id is caught first.
    other_family = invented_name()
    erased_id = await register(stack, identity, "hamborn", other_family, "Bogdan")
    await dpo.goto(f"{web}/audit?client_id={erased_id}")
    await dpo.get_by_role("link", name="Daten dieser Person löschen …").click()
    assert await dpo.locator("h2", has_text="Was geschieht").count() == 1
    assert await serious_accessibility_problems(dpo) == []
    await dpo.get_by_label("Kennung zur Bestätigung erneut eingeben").fill(client_id)  # the wrong person
    await dpo.get_by_role("button", name="Endgültig löschen").click()
    summary = dpo.get_by_role("alert")
    assert "stimmt nicht" in await summary.inner_text()
    assert "Bitte bestätigen Sie die Löschung." in await summary.inner_text()
    assert await serious_accessibility_problems(dpo) == []
    await dpo.get_by_label("Kennung zur Bestätigung erneut eingeben").fill(erased_id)
    await dpo.get_by_label("Ich habe geprüft").check()
    await dpo.get_by_role("button", name="Endgültig löschen").click()
    await dpo.wait_for_url(f"{web}/audit/erased/{erased_id}")
    assert await dpo.locator("h1").inner_text() == "Daten gelöscht"
    assert erased_id in await dpo.get_by_test_id("erased-records").inner_text()
    assert await serious_accessibility_problems(dpo) == []
    async with httpx.AsyncClient(timeout=15, auth=identity.auth("lead-hamborn")) as lead:
        gone = await lead.get(f"{stack.url('intake')}/clients/{erased_id}")
    assert gone.status_code == 410


async def test_the_admin_changes_opening_hours_that_the_offices_case_managers_see(
    stack: Stack, person_of: SignedIn
) -> None:
    web = stack.url("web")
    hours = f"Mo 9–12, Mi 14–17 ({uuid.uuid4().hex[:6]})"
    admin = await person_of("admin", web)
    await admin.get_by_role("link", name="Zu den Stammdaten").click()
    assert await serious_accessibility_problems(admin) == []
    await admin.get_by_role("link", name="Dienststellen").click()
    assert await serious_accessibility_problems(admin) == []
    await admin.get_by_role("link", name="RSC Rheinhausen bearbeiten").click()

    # A field the service refuses: its message at the field and in the summary, linked to it.
    await admin.get_by_label("Sprachen (ISO-Kürzel)").fill("de, klingonisch")
    await admin.get_by_role("button", name="Speichern").click()
    summary = admin.get_by_role("alert")
    assert await summary.locator('a[href="#f-languages"]').count() == 1
    assert await admin.locator("#f-languages-error").count() == 1
    assert await admin.get_attribute("#f-languages", "aria-invalid") == "true"
    assert await serious_accessibility_problems(admin) == []
    await screenshot(admin, "admin")

    await admin.get_by_label("Sprachen (ISO-Kürzel)").fill("de, tr")
    await admin.get_by_label("Sprechzeiten").fill(hours)
    await admin.get_by_role("button", name="Speichern").click()
    await admin.wait_for_url(f"{web}/admin/offices?saved=rsc-rheinhausen")
    assert "Gespeichert: RSC Rheinhausen." in await admin.get_by_role("status").inner_text()
    assert hours in await admin.get_by_test_id("admin-list").inner_text()

    manager = await person_of("staff-rheinhausen-1", web)
    assert hours in await manager.get_by_test_id("office-hours").inner_text()

    # A new partner agency through the form (its field errors first), then deactivated and activated.
    agency_id = f"web-test-{uuid.uuid4().hex[:6]}"
    await admin.goto(f"{web}/admin/agencies/new")
    await admin.get_by_label("Kennung der Partnerstelle").fill(agency_id)
    await admin.get_by_label("Name").fill("Beratungsstelle Test")
    await admin.get_by_label("Antwortfrist (Tage)").fill("99")
    await admin.get_by_role("button", name="Speichern").click()
    summary = admin.get_by_role("alert")
    assert await summary.locator('a[href="#f-response_days"]').count() == 1
    assert await summary.locator('a[href="#f-topics"]').count() == 1  # at least one topic
    assert await serious_accessibility_problems(admin) == []
    await admin.get_by_label("Antwortfrist (Tage)").fill("10")
    await admin.get_by_label("Art der Stelle").select_option("welfare_organisation")
    await admin.get_by_label("Kanal").select_option("inbox")
    await admin.get_by_label("Schulden (debts)").check()
    await admin.get_by_role("button", name="Speichern").click()
    await admin.wait_for_url(f"{web}/admin/agencies?saved={agency_id}")
    row = admin.locator(f'tr[data-id="{agency_id}"]')
    assert "aktiv" in await row.inner_text()
    await row.get_by_role("button", name="Beratungsstelle Test deaktivieren").click()
    assert "ist deaktiviert" in await admin.get_by_role("status").inner_text()
    assert "deaktiviert" in await admin.locator(f'tr[data-id="{agency_id}"]').inner_text()
    await admin.locator(f'tr[data-id="{agency_id}"]').get_by_role("button", name="aktivieren").click()
    assert "wieder aktiv" in await admin.get_by_role("status").inner_text()

    # The other lists open, each with its entries.
    for section, expected in (
        ("staff", "staff-rheinhausen-1"),
        ("routing-rules", "JMD"),
        ("topics", "debts"),
        ("agencies", "sozialamt-duisburg"),
    ):
        await admin.goto(f"{web}/admin/{section}")
        assert expected in await admin.locator("main").inner_text(), section
        assert await serious_accessibility_problems(admin) == [], section


async def test_a_case_manager_is_refused_the_audit_and_admin_pages(stack: Stack, person_of: SignedIn) -> None:
    web = stack.url("web")
    manager = await person_of("staff-hochfeld-2", web)
    for path in ("/audit", "/admin", "/admin/offices/rsc-hochfeld", "/audit/erase"):
        answer = await manager.goto(f"{web}{path}")
        assert answer is not None and answer.status == 403, path
        assert await manager.locator("h1").inner_text() == "Kein Zugriff"
        assert "Ihre Rolle erlaubt das nicht" in await manager.locator("main").inner_text()
    assert await serious_accessibility_problems(manager) == []


async def test_each_roles_start_page_leads_to_its_work(stack: Stack, person_of: SignedIn) -> None:
    web = stack.url("web")
    expectations = {
        "intake-hamborn": ("Person suchen", "/persons"),
        "dpo": ("Zugriffe und Auskunft", "/audit"),
        "admin": ("Zu den Stammdaten", "/admin"),
    }
    for username, (link, path) in expectations.items():
        page = await person_of(username, web)
        assert await page.get_by_role("link", name=link).get_attribute("href") == path, username
        assert await serious_accessibility_problems(page) == [], username

    # The office lead: the office's work and the reports; a report downloads as a file.
    lead = await person_of("lead-hamborn", web)
    assert await lead.locator("h2", has_text="Was zu tun ist").count() == 1
    assert await lead.locator("h2", has_text="Zahlen und Berichte").count() == 1
    assert await serious_accessibility_problems(lead) == []
    coordinator = await person_of("coordinator", web)
    form = coordinator.locator("form[action$='/download']").first
    await form.get_by_label("Format").select_option("csv")
    async with coordinator.expect_download() as downloading:
        await form.get_by_role("button").click()
    download = await downloading.value
    assert download.suggested_filename.endswith(".csv")
    assert await serious_accessibility_problems(coordinator) == []
