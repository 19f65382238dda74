"""The edge under abuse, on the local environment: each client its own rate-limit budget
through the front door (the app hosts trust the front door's X-Forwarded-For, an address
configure.yml derives from what was provisioned), and a slowloris client cut off by an app
host's nginx while normal clients keep their latency.
"""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.bench_api_runner import wrk_invocation, wrk_summary
from tests.e2e.conftest import FRONT_DOOR, LOCAL_CA, REPO, LocalEnv, front_door_request
from tests.e2e.loadclient import LoadClient, Request
from tests.e2e.releasing import on_host

pytestmark = pytest.mark.testbed

HEADER_TIMEOUT = 10  # nginx_client_header_timeout (roles/nginx/defaults/main.yml)


NGINX_DEFAULTS = yaml.safe_load((REPO / "roles/nginx/defaults/main.yml").read_text())
FLOOD_RATE = 600  # req/s the greedy client sends: six times its budget on two app hosts
FLOOD_SECONDS = 5


def _flood(predict: dict[str, str], body: Path) -> dict[str, Any]:
    """The greedy client: wrk (C) POSTing FLOOD_RATE predictions a second on a clock through
    the front door, its answers counted by status. A Python client cannot be the greedy one:
    its rate is the controller's spare CPU, which in one CI run was 114 requests/s, under the
    budget, so that it never saw a 429."""
    body.write_text(json.dumps(predict))
    cmd, env = wrk_invocation(
        f"{FRONT_DOOR}/predict", body, connections=16, duration=FLOOD_SECONDS, threads=1,
        rate=FLOOD_RATE, count_statuses=True,
    )  # fmt: skip
    done = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=FLOOD_SECONDS + 30, check=True
    )
    return wrk_summary(done.stdout)


def test_two_clients_through_the_front_door_have_separate_budgets(
    local_env: LocalEnv, tmp_path: Path
) -> None:
    card = front_door_request("GET", "/model").json()
    home, away = card["input_schema"]["fields"][0]["enum"][:2]
    # The other client: an app host, calling the front door over HTTPS like anyone else
    # (its address reaches the app hosts only as X-Forwarded-For).
    other = local_env.app_hosts[1]
    on_host(other, f"printf '%s' {shlex.quote(LOCAL_CA.read_text())} > /tmp/palpite-ca.crt")
    polite = (
        "import json, ssl, time, urllib.request\n"
        "tls = ssl.create_default_context(cafile='/tmp/palpite-ca.crt')\n"
        f"body = json.dumps({{'home_team': {home!r}, 'away_team': {away!r}}}).encode()\n"
        "statuses = []\n"
        "for _ in range(12):\n"
        f"    request = urllib.request.Request('{FRONT_DOOR}/predict', data=body,\n"
        "        headers={'Content-Type': 'application/json'})\n"
        "    try:\n"
        "        statuses.append(urllib.request.urlopen(request, context=tls, timeout=10).status)\n"
        "    except urllib.error.HTTPError as error:\n"
        "        statuses.append(error.code)\n"
        "    time.sleep(0.2)\n"
        "print(json.dumps(statuses))\n"
    )
    flood: dict = {}
    predict = {"home_team": home, "away_team": away}
    flooding = threading.Thread(
        target=lambda: flood.update(_flood(predict, tmp_path / "predict.json"))
    )
    flooding.start()
    time.sleep(1.5)  # the controller is over its budget by now
    statuses = on_host(other, f"python3 -c {shlex.quote(polite)}").strip()
    flooding.join(timeout=FLOOD_SECONDS + 40)
    out = REPO / ".cache" / "e2e" / "edge-flood.json"  # the numbers, also when it passes
    out.write_text(json.dumps({"greedy": flood, "polite": statuses}, indent=2))
    answers = flood["statuses"]
    # Each app host lets a client through at its rate after a burst; both hosts together,
    # with a second's slack for the clock, bound what the greedy client got answered.
    rate = int(NGINX_DEFAULTS["nginx_predict_rate"].removesuffix("r/s"))
    budget = 2 * (NGINX_DEFAULTS["nginx_predict_burst"] + rate * (FLOOD_SECONDS + 1))
    assert answers.get("429", 0) > 0, flood  # the greedy client is limited ...
    assert answers.get("200", 0) <= budget, flood  # ... to its budget ...
    assert set(answers) <= {"200", "429"}, flood  # ... and refused, never failed
    assert json.loads(statuses) == [200] * 12, statuses  # ... the other is not limited
    time.sleep(3)  # the controller's budget refills before the next tests


PACED_RATE = 100  # req/s: enough samples (800 or more a run) for a steady p99
READY = "/health/ready"


def _paced(urls: list[str], seconds: float) -> LoadClient:
    """PACED_RATE readiness checks a second to each of `urls` for `seconds`, in turn from
    one client, started: join() for the report, and its only(url + READY) for each."""
    return LoadClient(
        urls[0],
        PACED_RATE * len(urls),
        [Request("GET", url + READY) for url in urls],
        max_seconds=seconds,
        min_seconds=seconds,
    ).start()


def test_a_slowloris_client_is_cut_off_while_others_keep_their_latency(
    local_env: LocalEnv,
) -> None:
    host = local_env.app_hosts[0]
    url = f"http://{host.address}"
    other = f"http://{local_env.app_hosts[1].address}"
    before = _paced([url], 8).join()
    # 64 connections trickling one header line a second, never the blank line.
    slow = [socket.create_connection((host.address, 80), timeout=5) for _ in range(64)]
    opened = time.monotonic()
    closed_after: dict[int, float] = {}  # slow connection -> seconds until nginx closed it

    def trickle() -> None:
        for sock in slow:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: palpite\r\n")
            sock.setblocking(False)
        deadline = opened + HEADER_TIMEOUT + 8  # bounded: never longer than this
        line = 0
        while time.monotonic() < deadline and len(closed_after) < len(slow):
            time.sleep(1)
            line += 1
            for i, sock in enumerate(slow):
                if i in closed_after:
                    continue
                try:
                    sock.sendall(f"X-Trickle-{line}: a\r\n".encode())
                    if sock.recv(1024) == b"":
                        closed_after[i] = time.monotonic() - opened
                except BlockingIOError:
                    continue
                except OSError:
                    closed_after[i] = time.monotonic() - opened

    trickling = threading.Thread(target=trickle)
    trickling.start()
    # The same paced load on the other app host, at the same time and from the same client,
    # each request to this host followed by one to that: what the machine's own noise (other
    # test lanes on the same cores, the client's own thread and event loop) does to a p99 of
    # a few ms, sample by sample, in this window.
    both = _paced([url, other], HEADER_TIMEOUT + 2).join()
    during, beside = both.only(url + READY), both.only(other + READY)
    trickling.join(timeout=60)
    for sock in slow:
        sock.close()
    after = _paced([url], 8).join()

    assert len(closed_after) == len(slow), "some slow clients were never cut off"
    cut = sorted(closed_after.values())
    assert cut[-1] <= HEADER_TIMEOUT + 3, cut
    for report in (before, during, after, beside):
        assert report.failures == [], report.failures[:3]
        assert set(report.statuses()) == {200}, report.statuses()
    # The baseline: this host before and after the attack, and the other host during it. A
    # stall of the machine during the window shows on both hosts; slowloris only on this.
    baseline = max(before.latency_ms(0.99), after.latency_ms(0.99), beside.latency_ms(0.99))
    print(
        f"\nslowloris: 64 slow clients cut off after {cut[0]:.1f}-{cut[-1]:.1f} s; "
        f"p99 of {PACED_RATE} req/s without {before.latency_ms(0.99):.1f} / "
        f"{after.latency_ms(0.99):.1f} ms, during {during.latency_ms(0.99):.1f} ms "
        f"(the other host meanwhile {beside.latency_ms(0.99):.1f} ms)"
    )
    assert during.latency_ms(0.99) <= 2 * baseline, (during.summary(), baseline)
