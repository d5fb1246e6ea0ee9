"""The person screens of the web app (issue 10, screens 2-4) in a real Chromium against the running
system and Keycloak: intake staff search before they register, meet their field errors at the
field, meet a likely duplicate side by side (confirm as new, open the existing one), record a
consent and correct the birth date; another office's staff are refused with the reason. Every
screen is checked with axe-core."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.browser import launch, serious_accessibility_problems, sign_in
from tools.stack import Stack

pytestmark = pytest.mark.e2e

FAMILY, GIVEN, BORN = "Oyelaran", "Folasade", "1995-03-14"


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async for running in launch():
        yield running


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(locale="de-DE")
    opened = await context.new_page()
    yield opened
    await context.close()


async def screenshot(page: Page, name: str) -> None:
    """Into KP_SCREENSHOTS (a folder) when set: normal runs write nothing into the repository."""
    folder = os.environ.get("KP_SCREENSHOTS")
    if folder:
        await asyncio.to_thread(Path(folder).mkdir, parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(folder) / name), full_page=True)


async def no_serious_problems(page: Page) -> None:
    """axe-core finds nothing serious; the page's load time is printed for the note (-s)."""
    assert await serious_accessibility_problems(page) == [], page.url
    took = await page.evaluate("performance.getEntriesByType('navigation')[0]?.duration ?? 0")
    print(f"page {re.sub(r'[0-9a-f-]{36}', '{id}', page.url.split('?')[0])}: {took:.0f} ms, axe clean")


async def search(page: Page, family_name: str, given_name: str = "") -> None:
    await page.get_by_label("Familienname").fill(family_name)
    await page.get_by_label("Vorname(n)").fill(given_name)
    await page.get_by_role("button", name="Suchen").click()


async def test_intake_staff_search_register_meet_a_duplicate_give_consent_and_correct_the_birth_date(
    stack: Stack, page: Page, browser: Browser
) -> None:
    web = stack.url("web")
    await sign_in(page, web, "intake-hochfeld")

    # Registering starts with the search: nobody of that name yet.
    await page.get_by_role("link", name="Person finden").click()
    await page.get_by_role("link", name="Person anmelden").click()
    await expect(page.locator("h1")).to_have_text("Person anmelden")
    await search(page, FAMILY, GIVEN)
    await expect(page.get_by_test_id("none-found")).to_contain_text("Keine Person gefunden")
    await no_serious_problems(page)
    await screenshot(page, "person-search.png")

    # The form comes with what was searched for; a wrong country code is refused at its field.
    await page.get_by_role("button", name="Neue Person anmelden").click()
    await expect(page.get_by_label("Familienname")).to_have_value(FAMILY)
    await expect(page.get_by_label("Vorname(n)")).to_have_value(GIVEN)
    await page.get_by_label("Geburtsdatum").fill(BORN)
    await page.get_by_label("Staatsangehörigkeiten").fill("NG, ZZ")
    await page.get_by_label("Sprachen", exact=True).fill("en, yo")
    await page.get_by_label("Aufenthaltsstatus").select_option("residence_permit")
    await page.get_by_label("Kinder").fill("2")
    await page.get_by_label("Ort").fill("Duisburg")
    await page.get_by_role("button", name="Person anmelden").click()
    summary = page.get_by_role("alert").filter(has_text="Bitte prüfen Sie Ihre Eingaben")
    await expect(summary).to_contain_text("Unbekannter Ländercode")
    await expect(summary.get_by_role("link")).to_have_attribute("href", "#reg-nationalities")
    field = page.locator("#reg-nationalities")
    await expect(field).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#reg-nationalities-error")).to_contain_text("Unbekannter Ländercode")
    assert "reg-nationalities-error" in (await field.get_attribute("aria-describedby") or "")
    await expect(page.get_by_label("Kinder")).to_have_value("2")  # what was typed stays
    await no_serious_problems(page)
    await screenshot(page, "person-register.png")
    await page.get_by_label("Staatsangehörigkeiten").fill("NG")
    await page.get_by_role("button", name="Person anmelden").click()

    # The person's page shows where the routing put them.
    await page.wait_for_url(re.compile(r".*/persons/[0-9a-f-]{36}\?registered=1"))
    first_url = page.url.split("?")[0]
    await expect(page.get_by_test_id("registered")).to_contain_text("MBE")
    await expect(page.get_by_test_id("registered")).to_contain_text("RSC Hochfeld")
    await expect(page.get_by_test_id("record")).to_contain_text(BORN)
    await no_serious_problems(page)

    # A second, similar registration: the search finds her by sound, registering anyway meets
    # the duplicate warning with both side by side.
    await page.goto(f"{web}/persons/new")
    await search(page, "Ojelaran", GIVEN)
    await expect(page.get_by_role("table")).to_contain_text(FAMILY)
    await page.get_by_role("button", name="Neue Person anmelden").click()
    await page.get_by_label("Geburtsdatum").fill(BORN)
    await page.get_by_role("button", name="Person anmelden").click()
    duplicates = page.get_by_test_id("duplicates")
    await expect(duplicates).to_contain_text(f"{FAMILY}, {GIVEN}")
    await expect(duplicates).to_contain_text(f"Ojelaran, {GIVEN}")
    open_existing = duplicates.get_by_role("link", name=re.compile("Bestehende Person öffnen"))
    await expect(open_existing).to_have_attribute("href", first_url.removeprefix(web))
    await no_serious_problems(page)
    # Confirmed as new: a second person; the existing one opens from the warning too.
    await page.get_by_role("button", name="Als neue Person bestätigen").click()
    await page.wait_for_url(re.compile(r".*/persons/[0-9a-f-]{36}\?registered=1"))
    assert page.url.split("?")[0] != first_url
    await page.go_back()
    await page.goto(first_url)
    await expect(page.locator("h1")).to_have_text(f"{FAMILY}, {GIVEN}")

    # A consent for every job centre, for name and contact.
    await page.get_by_label("Zweck").select_option("sharing")
    await page.get_by_label("Empfänger").select_option("kind:jobcenter")
    await page.get_by_label("Name", exact=True).check()
    await page.get_by_label("Kontaktdaten").check()
    await page.get_by_role("button", name="Einwilligung erfassen").click()
    await expect(page.get_by_test_id("notice")).to_have_text("Die Einwilligung ist erfasst.")
    consents = page.get_by_test_id("consents")
    await expect(consents).to_contain_text("jobcenter")
    await expect(consents).to_contain_text("gültig")
    await no_serious_problems(page)
    await screenshot(page, "person.png")

    # The birth date corrected (with the record's ETag).
    await page.get_by_text("Korrekturformular öffnen").click()
    await page.locator("#fix-birth_date").fill("1995-04-14")
    await page.get_by_role("button", name="Korrektur speichern").click()
    await expect(page.get_by_test_id("notice")).to_have_text("Die Angaben sind korrigiert.")
    await expect(page.get_by_test_id("record")).to_contain_text("1995-04-14")

    # The consent withdrawn.
    await page.get_by_role("button", name=re.compile("Einwilligung vom .* widerrufen")).click()
    await expect(page.get_by_test_id("consents")).to_contain_text("widerrufen am")

    # Another office's staff cannot open her: the service's reason is shown.
    other = await browser.new_context(locale="de-DE")
    hamborn = await other.new_page()
    try:
        await sign_in(hamborn, web, "staff-hamborn-1")
        answer = await hamborn.goto(first_url)
        assert answer is not None and answer.status == 403
        await expect(hamborn.locator("h1")).to_have_text("Kein Zugriff")
        await expect(hamborn.get_by_role("alert")).to_contain_text("anderen Dienststelle")
        await no_serious_problems(hamborn)
        # Nor find her.
        await hamborn.goto(f"{web}/persons")
        await search(hamborn, FAMILY)
        await expect(hamborn.get_by_test_id("none-found")).to_be_visible()
    finally:
        await other.close()


async def test_a_stale_correction_says_changed_meanwhile_and_the_case_manager_sees_the_cases(
    stack: Stack, browser: Browser
) -> None:
    web = stack.url("web")
    contexts = [await browser.new_context(locale="de-DE") for _ in range(2)]
    try:
        first, second = [await context.new_page() for context in contexts]
        await sign_in(first, web, "staff-hochfeld-1")
        await first.goto(f"{web}/persons/new")
        await search(first, "Nnamdi", "Chidi")
        await first.get_by_role("button", name="Neue Person anmelden").click()
        await first.get_by_label("Geburtsjahr").fill("1990")
        await first.get_by_role("button", name="Person anmelden").click()
        await first.wait_for_url(re.compile(r".*/persons/[0-9a-f-]{36}\?registered=1"))
        person_url = first.url.split("?")[0]
        # Two open pages; the first saves, the second is based on the old version.
        await sign_in(second, web, "staff-hochfeld-2")
        await second.goto(person_url)
        await first.goto(person_url)
        for opened in (first, second):
            await opened.get_by_text("Korrekturformular öffnen").click()
        await first.locator("#fix-phone").fill("+49 203 111")
        await first.get_by_role("button", name="Korrektur speichern").click()
        await expect(first.get_by_test_id("notice")).to_have_text("Die Angaben sind korrigiert.")
        await second.locator("#fix-phone").fill("+49 203 222")
        await second.get_by_role("button", name="Korrektur speichern").click()
        await expect(second.get_by_test_id("conflict")).to_contain_text("inzwischen von jemand anderem geändert")
        await no_serious_problems(second)
        # The person's first case (opened from the registration event) is listed with its link.
        for _ in range(40):
            await first.goto(person_url)
            if await first.get_by_test_id("cases").count():
                break
            await first.wait_for_timeout(500)
        link = first.get_by_test_id("cases").get_by_role("link", name="Fall MBE öffnen")
        await expect(link).to_have_attribute("href", re.compile(r"^/cases/[0-9a-f-]{36}$"))
    finally:
        for context in contexts:
            await context.close()
