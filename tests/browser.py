"""Headless Chromium for the browser tests: Debian's own, never a downloaded browser."""

import os
import subprocess
import tempfile
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


def launch_chromium(playwright: Playwright, trusted_ca: Path | None = None) -> Browser:
    """Chromium; with `trusted_ca`, trusting that CA the way a user adds one on Linux: in
    the NSS database of the browser's home (a temporary one), with certutil. Nothing that
    ignores certificate errors."""
    env = None
    if trusted_ca is not None:
        home = Path(tempfile.mkdtemp(prefix="palpite-chromium-"))
        nssdb = f"sql:{home}/.pki/nssdb"
        (home / ".pki" / "nssdb").mkdir(parents=True)
        for args in (
            ["-N", "--empty-password"],
            ["-A", "-n", "palpite local CA", "-t", "C,,", "-i", str(trusted_ca)],
        ):
            subprocess.run(["certutil", "-d", nssdb, *args], check=True, timeout=60)
        env = {**os.environ, "HOME": str(home)}
    return playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, env=env
    )


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
