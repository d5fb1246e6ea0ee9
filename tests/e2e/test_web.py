"""The web app in a real Chromium against the running system and Keycloak: signing in, the start
page per role, the language switch, signing out; every page checked with axe-core."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page

from tests.e2e.browser import launch, serious_accessibility_problems, sign_in
from tools.stack import Stack

pytestmark = pytest.mark.e2e


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


async def test_a_case_manager_signs_in_sees_the_start_page_in_german_and_english_and_signs_out(
    stack: Stack, page: Page
) -> None:
    web = stack.url("web")
    await sign_in(page, web, "staff-hochfeld-1")
    assert await page.locator("h1").inner_text() == "Guten Tag, Mira Nowak."
    assert "Fallmanagement" in await page.get_by_test_id("signed-in-as").inner_text()
    assert "RSC Hochfeld" in await page.locator("main").inner_text()
    assert await serious_accessibility_problems(page) == []

    await page.get_by_role("link", name="English").click()
    assert await page.locator("h1").inner_text() == "Hello, Mira Nowak."
    assert await page.get_attribute("html", "lang") == "en"

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{web}/signed-out")
    # Signed out here and at Keycloak: the start page asks to sign in again.
    await page.goto(web)
    assert await page.locator("#username").count() == 1


async def test_a_form_posted_without_the_sessions_token_is_refused(stack: Stack, page: Page) -> None:
    web = stack.url("web")
    await sign_in(page, web, "lead-hamborn")
    answer = await page.request.post(f"{web}/logout", form={"csrf_token": "forged"})
    assert answer.status == 403
    assert "Formular ist abgelaufen" in await answer.text()
    await page.goto(web)
    assert await page.locator("h1").inner_text() == "Guten Tag, Sabine Hoffmann."  # still signed in
