"""Headless Chromium for the browser tests: Debian's own, never a downloaded browser."""

from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Screenshots the tests keep (CI collects them).
ARTIFACTS = Path(__file__).resolve().parents[1] / ".cache" / "artifacts"


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


# Chromium's notes about the transport, not faults of the page: served over plain HTTP
# from an address other than loopback (the local front door), it ignores the
# Cross-Origin-Opener-Policy header and says so as a console error.
_TRANSPORT_NOTES = ("has been ignored, because the URL's origin was untrustworthy",)
_CLIENT_ERROR = "Failed to load resource: the server responded with a status of 4"


def watch_console(page: Page, *, allow_4xx: bool = False) -> list[str]:
    """The page's console errors and uncaught exceptions, as they come; `allow_4xx` for
    a page that is expected to be a 4xx answer (the 422 of a refused form)."""
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        text = message.text
        if message.type != "error" or any(note in text for note in _TRANSPORT_NOTES):
            return
        if allow_4xx and text.startswith(_CLIENT_ERROR):
            return
        problems.append(text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems
