"""A model swap under steady traffic: clients send continuously before, during and after
the SIGHUP; no request fails, and once the old workers are gone every answer carries
the new version (and no client ever goes back from the new version to the old)."""

import http.client
import json
import threading
import time
from dataclasses import dataclass

import pytest
from conftest import move_current

pytestmark = pytest.mark.slow
BODY = json.dumps({"features": [1.0, 2.0, 3.0, 4.0]})
CLIENTS = 4
# Bounds: traffic runs this long before the HUP and after the old workers exit.
BEFORE_S, AFTER_S, MAX_S = 2.0, 2.0, 90.0


@dataclass
class Result:
    sent: float
    status: int | None
    version: str | None
    error: str | None = None
    done: float = 0.0


def client_loop(port: int, stop: threading.Event, results: list[Result]) -> None:
    # One keep-alive connection, reopened by http.client after a `Connection: close`.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while not stop.is_set():
        sent = time.monotonic()
        try:
            conn.request("POST", "/predict", BODY, {"content-type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            version = resp.getheader("x-model-version")
            results.append(Result(sent, resp.status, version, done=time.monotonic()))
        except (OSError, http.client.HTTPException) as exc:
            results.append(Result(sent, None, None, repr(exc)))
            conn.close()
    conn.close()


def test_hup_swap_under_load_drops_nothing(start_gunicorn, releases):
    old, new = releases[0].name, releases[1].name
    server = start_gunicorn(workers=2)
    old_pids = server.worker_pids()
    stop = threading.Event()
    per_client: list[list[Result]] = [[] for _ in range(CLIENTS)]
    threads = [
        threading.Thread(target=client_loop, args=(server.port, stop, per_client[i]), daemon=True)
        for i in range(CLIENTS)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        time.sleep(BEFORE_S)
        move_current(server.models, new)
        server.hup()
        server.wait_gone(old_pids, timeout=MAX_S)
        old_gone = time.monotonic()
        server.wait_booted(4, timeout=MAX_S)
        time.sleep(AFTER_S)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=70)
    assert time.monotonic() - started < MAX_S + 10

    results = [r for rs in per_client for r in rs]
    failures = [r for r in results if r.status != 200]
    assert failures == [], failures[:5]
    versions = [r.version for r in results]
    assert versions.count(old) > 0 and versions.count(new) > 0
    late = [r.version for r in results if r.sent >= old_gone]
    assert late and set(late) == {new}
    for rs in per_client:
        seq = [r.version for r in rs]
        first_new = seq.index(new)
        assert set(seq[first_new:]) == {new}, "a client went back to the old model"
    slowest = max(r.done - r.sent for r in results)
    print(
        f"\n{len(results)} requests: {versions.count(old)} old, {versions.count(new)} new,"
        f" 0 failed; slowest {slowest:.2f} s (waiting for the new workers to boot)"
    )
