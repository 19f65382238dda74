"""The page, /docs and /redoc in headless Chromium (Debian's), under the proxy's strict CSP.

The app runs in uvicorn on loopback, wrapped in a test-only middleware that sends the
CSP the nginx role will send. Any CSP violation or script error fails the test.
Screenshots go to .cache/artifacts/ (git-ignored).
"""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from app.main import create_app
from app.settings import Settings
from tests.browser import ARTIFACTS, launch_chromium, watch_console
from tests.local_server import serve_in_thread

pytestmark = pytest.mark.slow

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
# ReDoc renders through styled-components, which injects <style> elements: no build of
# it works under `style-src 'self'`. /redoc is therefore checked with inline *styles*
# allowed (scripts stay 'self' only); docs/benchmarks.md and docs/api.md tell the proxy.
CSP_REDOC = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


class StrictCsp:
    """What the proxy adds to every answer (test-only)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        policy = CSP_REDOC if scope.get("path") == "/redoc" else CSP

        async def send_with_csp(message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    *message.get("headers", ()),
                    (b"content-security-policy", policy.encode()),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_csp)


@pytest.fixture(scope="module")
def base_url(football: Path) -> Iterator[str]:
    app = StrictCsp(create_app(Settings(model_dir=football)))
    with serve_in_thread(app, log_level="warning") as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser):
    contexts = []

    def open_(width: int, height: int) -> tuple[Page, list[str]]:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        return page, watch_console(page, allow_4xx=True)

    yield open_
    for context in contexts:
        context.close()


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    print(f"\nscreenshot: {path}")
    return path


def test_choose_two_teams_and_read_the_probabilities(open_page, base_url):
    page, problems = open_page(1280, 900)
    response = page.goto(base_url + "/")
    assert response.headers["content-security-policy"] == CSP
    page.select_option("select[name=home_team]", "Palmeiras")
    page.select_option("select[name=away_team]", "Santos")
    page.click("button[type=submit]")
    page.wait_for_selector("#predicted-label")
    bars = page.locator(".bar")
    shown = {
        bars.nth(i).get_attribute("data-class"): float(
            bars.nth(i).locator(".pct").get_attribute("data-probability")
        )
        for i in range(bars.count())
    }
    api = httpx.post(base_url + "/predict", json={"home_team": "Palmeiras", "away_team": "Santos"})
    [expected] = api.json()["predictions"]
    assert shown == pytest.approx(expected["probabilities"])
    label = page.text_content("#predicted-label")
    assert label == page.locator(".bar.winner dt").text_content()
    assert page.input_value("select[name=home_team]") == "Palmeiras"
    assert "Backtest" in page.text_content(".model-card")
    shot(page, "page-desktop.png")
    assert problems == []


def test_same_team_twice_is_refused(open_page, base_url):
    page, problems = open_page(1280, 900)
    page.goto(base_url + "/")
    page.select_option("select[name=home_team]", "Santos")
    page.select_option("select[name=away_team]", "Santos")
    page.click("button[type=submit]")
    assert "must differ" in page.text_content(".field.invalid")
    assert page.locator("meter").count() == 0
    assert problems == []


def test_phone_layout_fits_the_screen(open_page, base_url):
    page, problems = open_page(390, 844)
    page.goto(base_url + "/")
    page.click("button[type=submit]")
    page.wait_for_selector("#predicted-label")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    shot(page, "page-phone.png")
    assert problems == []


def test_swagger_ui_renders_under_the_csp(open_page, base_url):
    page, problems = open_page(1280, 900)
    page.goto(base_url + "/docs")
    page.wait_for_selector(".opblock-summary-path >> text=/predict", timeout=30_000)
    assert page.locator(".opblock").count() >= 5
    shot(page, "docs.png")
    assert problems == []


def test_redoc_renders_with_strict_scripts(open_page, base_url):
    page, problems = open_page(1280, 900)
    response = page.goto(base_url + "/redoc")
    assert response.headers["content-security-policy"] == CSP_REDOC
    page.wait_for_selector("text=Predict one instance or a batch", timeout=30_000)
    shot(page, "redoc.png")
    # ReDoc's "powered by" badge points at its CDN; the CSP blocks it, as it should.
    assert [p for p in problems if "cdn.redoc.ly/redoc/logo-mini.svg" not in p] == []
