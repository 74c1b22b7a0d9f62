"""Headless Chromium for the page tests: Debian's /usr/bin/chromium (installed by `make test`)."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "var" / "test-artifacts"  # screenshots for people
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def log_in(page: Page, base_url: str, login: str) -> None:
    """Log in through the login form (the test password) and wait for the landing page."""
    from tests import factory

    await page.goto(f"{base_url}/login")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", factory.PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(lambda url: "/login" not in url)


async def upload_import(page: Page, base_url: str, department: str, layout: str, path: Path) -> Locator:
    """Import a file on the administrators' import page (logged in already): the result panel."""
    await page.goto(f"{base_url}/admin/imports")
    await page.select_option("select[name=department]", department)
    await page.select_option("select[name=mapping]", layout)
    await page.set_input_files("input[name=file]", str(path))
    await page.click("#import-form button[type=submit]")
    return page.get_by_test_id("import-result")
