"""Real gunicorn on loopback: /metrics merged over workers, a model swap by SIGHUP under
steady traffic with no failed request, and a process that starts without a model (and
writes its waiting access lines when it stops).

One server does the metrics and the swap (a boot costs 20-30 s on a busy 2-core host):
every /predict it answered is counted, so the counter must equal the requests sent.
"""

import http.client
import json
import threading
import time
from dataclasses import dataclass

import pytest
from conftest import move_current, request
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.slow
ROW = {"features": [1.0, 2.0, 3.0, 4.0]}
BODY = json.dumps(ROW)
CLIENTS = 4
# Bounds: traffic runs this long before the HUP and after the new workers are up.
BEFORE_S, AFTER_S, MAX_S = 2.0, 2.0, 90.0


@dataclass
class Result:
    sent: float
    done: float
    status: int | None
    version: str | None
    error: str | None = None


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
            results.append(Result(sent, time.monotonic(), resp.status, version))
        except (OSError, http.client.HTTPException) as exc:
            results.append(Result(sent, time.monotonic(), None, None, repr(exc)))
            conn.close()
    conn.close()


def scrape(port: int) -> dict[str, list[tuple[dict, float]]]:
    status, _, body = request(port, "GET", "/metrics")
    assert status == 200
    out: dict[str, list[tuple[dict, float]]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def predict_ok(metrics: dict) -> float:
    return sum(
        v
        for labels, v in metrics["palpite_http_requests_total"]
        if labels["route"] == "/predict" and labels["status"] == "200"
    )


def versions(metrics: dict, name: str) -> set[str]:
    return {labels["version"] for labels, _ in metrics[name]}


def swap_under_load(server, new: str) -> list[list[Result]]:
    """Clients send continuously before, during and after `current` moves and HUP."""
    old_pids = server.worker_pids()
    stop = threading.Event()
    per_client: list[list[Result]] = [[] for _ in range(CLIENTS)]
    threads = [
        threading.Thread(target=client_loop, args=(server.port, stop, rs), daemon=True)
        for rs in per_client
    ]
    for t in threads:
        t.start()
    try:
        time.sleep(BEFORE_S)
        move_current(server.models, new)
        server.hup()
        server.wait_gone(old_pids, timeout=MAX_S)
        server.old_gone = time.monotonic()
        server.wait_booted(2 * server.workers, timeout=MAX_S)
        time.sleep(AFTER_S)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=70)
    return per_client


def test_metrics_over_workers_and_hup_swap_under_load(start_gunicorn, releases):
    old, new = releases[0].name, releases[1].name
    server = start_gunicorn(workers=3)
    n = 60
    for _ in range(n):  # a fresh connection each, so they spread over the workers
        status, headers, _ = request(server.port, "POST", "/predict", ROW)
        assert status == 200 and headers["x-model-version"] == old
    served_by = {line["pid"] for line in server.access_lines() if line["path"] == "/predict"}
    assert len(served_by) >= 2, "the requests did not spread over workers"
    metrics = scrape(server.port)
    assert predict_ok(metrics) == n
    assert sum(v for _, v in metrics["palpite_predictions_total"]) == n
    assert versions(metrics, "palpite_model_info") == {old}
    assert metrics["palpite_model_ready"] == [({}, 1.0)]

    per_client = swap_under_load(server, new)

    results = [r for rs in per_client for r in rs]
    failures = [r for r in results if r.status != 200]
    assert failures == [], failures[:5]
    seen = [r.version for r in results]
    assert seen.count(old) > 0 and seen.count(new) > 0
    late = [r.version for r in results if r.sent >= server.old_gone]
    assert late and set(late) == {new}
    for rs in per_client:
        seq = [r.version for r in rs]
        assert set(seq[seq.index(new) :]) == {new}, "a client went back to the old model"

    time.sleep(0.2)  # a worker writes its counts at most settings.record_flush_seconds late
    metrics = scrape(server.port)
    assert versions(metrics, "palpite_model_info") == {new}
    assert versions(metrics, "palpite_model_load_seconds") == {new}
    # Every answered /predict is counted, including those of the workers that exited.
    assert predict_ok(metrics) == n + len(results)
    slowest = max(r.done - r.sent for r in results)
    print(
        f"\n{len(results)} requests across the swap: {seen.count(old)} old, {seen.count(new)} new,"
        f" 0 failed; slowest {slowest:.2f} s (queued while the new workers booted)"
    )


def test_starts_without_a_model(start_gunicorn, tmp_path):
    # The same server shows a stopping worker writing the access lines still waiting for
    # their flush (the app's lifespan shutdown): they wait up to a second here.
    server = start_gunicorn(
        workers=1,
        PALPITE_MODEL_DIR=str(tmp_path / "nothing"),
        PALPITE_RECORD_FLUSH_SECONDS="1",
    )
    assert request(server.port, "GET", "/health/live")[0] == 200
    status, _, body = request(server.port, "GET", "/health/ready")
    assert status == 503 and b"no model at" in body
    status, _, body = request(server.port, "POST", "/predict", ROW)
    assert status == 503 and b"no_model" in body
    assert server.access_log.read_text() == ""  # not yet written
    server.proc.terminate()
    server.proc.wait(timeout=30)
    lines = server.access_lines()
    assert [(x["path"], x["status"]) for x in lines] == [
        ("/health/live", 200),
        ("/health/ready", 503),
        ("/predict", 503),
    ]
