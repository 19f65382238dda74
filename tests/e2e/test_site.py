"""`site.yml` end to end on the local environment, through the front door.

The session fixture (conftest.py) ran site.yml from nothing; these tests use the service as
a person or a script would, then run site.yml again and expect nothing to change.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from playwright.sync_api import sync_playwright

from tests.browser import ARTIFACTS, launch_chromium, watch_console
from tests.e2e.conftest import (
    FRONT_DOOR_ADDRESS,
    LOCAL_CA,
    REPO,
    LocalEnv,
    assert_ok,
    front_door_request,
    run_playbook,
)

pytestmark = pytest.mark.testbed

TESTBED = REPO / "tests" / "testbed" / "testbed"
FRONT_DOOR_HOST = "palpite-local-front-door"


def two_teams() -> tuple[str, str]:
    card = front_door_request("GET", "/model", timeout=10).json()
    home, away = card["input_schema"]["fields"][:2]
    return home["enum"][0], away["enum"][1]


def test_health_ready_names_the_production_model(local_env: LocalEnv) -> None:
    response = front_door_request("GET", "/health/ready", timeout=10)
    assert response.status_code == 200
    card = front_door_request("GET", "/model", timeout=10).json()
    assert response.json()["model_version"] == card["version"]


def test_single_and_batch_predictions(local_env: LocalEnv) -> None:
    home, away = two_teams()
    single = front_door_request(
        "POST", "/predict", json={"home_team": home, "away_team": away}, timeout=10
    )
    assert single.status_code == 200
    [prediction] = single.json()["predictions"]
    assert set(prediction["probabilities"]) == {"home_win", "draw", "away_win"}
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert single.headers["x-model-version"] == single.json()["model_version"]

    instances = [{"home_team": home, "away_team": away}, {"home_team": away, "away_team": home}]
    batch = front_door_request("POST", "/predict", json={"instances": instances * 50}, timeout=30)
    assert batch.status_code == 200
    assert len(batch.json()["predictions"]) == 100


def test_bad_input_is_a_4xx_through_the_proxy(local_env: LocalEnv) -> None:
    home, _ = two_teams()
    same = front_door_request(
        "POST", "/predict", json={"home_team": home, "away_team": home}, timeout=10
    )
    assert same.status_code == 422


def test_page_and_security_headers(local_env: LocalEnv) -> None:
    page = front_door_request("GET", "/", timeout=10)
    assert page.status_code == 200
    assert "<form" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"


def test_http_redirects_to_https_with_hsts_as_curl_sees_it(local_env: LocalEnv) -> None:
    """A user's curl: plain HTTP answers only a redirect; HTTPS verifies against the local
    CA (--cacert, nothing switched off) and every answer carries HSTS."""

    def curl(*args: str, exit_code: int = 0) -> str:
        out = subprocess.run(
            ["curl", "-sS", "--noproxy", "*", "-o", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == exit_code, out.stderr
        return out.stdout

    redirect = curl("-w", "%{http_code} %{redirect_url}", f"http://{FRONT_DOOR_ADDRESS}/model?x=1")
    assert redirect == f"301 https://{FRONT_DOOR_ADDRESS}/model?x=1"
    headers = curl("--cacert", str(LOCAL_CA), "-D", "-", f"https://{FRONT_DOOR_ADDRESS}/")
    assert headers.startswith("HTTP/1.1 200"), headers
    assert "strict-transport-security: max-age=31536000" in headers.lower(), headers
    for path in ("/predict", "/health/ready"):  # errors and probes too
        response = front_door_request("GET", path)
        assert "max-age" in response.headers["strict-transport-security"], path
    # And without the CA the certificate is not trusted (curl's exit 60).
    curl(f"https://{FRONT_DOOR_ADDRESS}/", exit_code=60)


@pytest.mark.parametrize("old", ["-tls1", "-tls1_1"])
def test_the_server_refuses_tls_1_0_and_1_1(local_env: LocalEnv, old: str) -> None:
    """A client offering only TLS 1.0 or 1.1 (its own floor lowered with @SECLEVEL=0) fails
    the handshake because the server says no (a protocol_version alert); the same client
    offering TLS 1.2 gets through."""

    def handshake(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["openssl", "s_client", "-connect", f"{FRONT_DOOR_ADDRESS}:443", *args],
            input="",
            capture_output=True,
            text=True,
            timeout=30,
        )

    refused = handshake(old, "-cipher", "DEFAULT:@SECLEVEL=0")
    assert refused.returncode != 0
    assert "alert protocol version" in refused.stdout + refused.stderr, refused.stderr
    accepted = handshake(
        "-tls1_2",
        "-CAfile",
        str(LOCAL_CA),
        "-verify_ip",
        FRONT_DOOR_ADDRESS,
        "-verify_return_error",
    )
    assert accepted.returncode == 0, accepted.stderr
    assert "Verify return code: 0 (ok)" in accepted.stdout


def test_metrics_from_the_allowed_network_only(local_env: LocalEnv) -> None:
    # The controller (10.231.0.1) is on the allow-list, through the front door too (the app
    # hosts trust its X-Forwarded-For); the front door host itself is not.
    allowed = front_door_request("GET", "/metrics", timeout=10)
    assert allowed.status_code == 200
    assert "palpite" in allowed.text
    app_host = local_env.app_hosts[0].address
    probe = (
        "import urllib.request, urllib.error\n"
        "try:\n"
        f"    urllib.request.urlopen('http://{app_host}/metrics', timeout=5)\n"
        "    print(200)\n"
        "except urllib.error.HTTPError as error:\n"
        "    print(error.code)\n"
    )
    denied = subprocess.run(
        [str(TESTBED), "exec", FRONT_DOOR_HOST, "python3", "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert denied.stdout.strip() == "403", denied.stderr


def test_page_in_chromium(local_env: LocalEnv) -> None:
    home, away = two_teams()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = launch_chromium(pw, trusted_ca=LOCAL_CA)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors = watch_console(page)
            page.goto(f"{local_env.url}/")
            page.select_option("select[name=home_team]", home)
            page.select_option("select[name=away_team]", away)
            page.click("button[type=submit]")
            page.wait_for_selector("#predicted-label")
            shown = [
                float(p.get_attribute("data-probability") or "nan")
                for p in page.locator(".bar .pct").all()
            ]
            shot = ARTIFACTS / "e2e-front-door.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"\nscreenshot: {shot}", file=sys.stderr)
        finally:
            browser.close()
    assert len(shown) == 3
    assert sum(shown) == pytest.approx(1.0, abs=0.01)
    assert errors == []


RECAP = re.compile(
    r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M
)


def test_second_site_run_changes_nothing(local_env: LocalEnv) -> None:
    start = time.monotonic()
    result = run_playbook("site.yml", log="site-again.log")
    again_seconds = time.monotonic() - start
    assert_ok(result, "the second site.yml run")
    recap = {host: int(changed) for host, _, changed, _, _ in RECAP.findall(result.stdout)}
    assert set(recap) >= {"localhost", "front-door"}, result.stdout[-2000:]
    assert len(recap) >= 4  # localhost, the front door and two app hosts
    assert recap == dict.fromkeys(recap, 0), f"changed tasks on a second run: {recap}"
    timings = (
        f"site.yml from nothing: {local_env.site_seconds:.0f} s\n"
        f"site.yml again (changed=0): {again_seconds:.0f} s\n"
    )
    (REPO / ".cache" / "e2e" / "timings.txt").write_text(timings)
    print(f"\n{timings}", file=sys.stderr)
