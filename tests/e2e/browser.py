"""A real Chromium for the browser tests: Debian's `chromium` (or KP_CHROMIUM), driven by
Playwright; never a browser a tool downloads. Missing, the tests fail with the reason."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

from playwright.async_api import Browser, Page, async_playwright

from tools.stack import ROOT

AXE = ROOT / "services" / "web" / "node_modules" / "axe-core" / "axe.min.js"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    found = os.environ.get("KP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError(
            "Chromium not found: install Debian's package (apt-get install chromium) or set KP_CHROMIUM; "
            "the browser tests never skip"
        )
    return found


async def launch() -> AsyncIterator[Browser]:
    # Playwright gives each launch a fresh, empty profile of its own.
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


async def sign_in(page: Page, web_url: str, username: str, password: str = "demo") -> None:
    """Open the web app and sign in on Keycloak's own page, as a person would."""
    await page.goto(web_url)
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("#kc-login")
    await page.wait_for_url(f"{web_url}/**")


async def serious_accessibility_problems(page: Page) -> list[str]:
    """axe-core run in the page: the serious and critical WCAG 2.1 A/AA violations, by rule."""
    if not AXE.exists():
        raise RuntimeError(f"{AXE} missing: run `make install` (npm ci in services/web)")
    await page.add_script_tag(path=str(AXE))
    return await page.evaluate(
        """async () => {
            const result = await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']});
            return result.violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => `${v.id}: ${v.nodes.map(n => n.target.join(' ')).join(', ')}`);
        }"""
    )
