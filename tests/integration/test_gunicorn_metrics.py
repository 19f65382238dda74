"""/metrics under real gunicorn: counts merged over workers, and after a HUP only the new
model version is reported (dead workers are marked, their counters kept)."""

import pytest
from conftest import move_current, request
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.slow
ROW = {"features": [1.0, 2.0, 3.0, 4.0]}


def scrape(port: int) -> dict[str, list[tuple[dict, float]]]:
    status, _, body = request(port, "GET", "/metrics")
    assert status == 200
    out: dict[str, list[tuple[dict, float]]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def predict_count(metrics: dict) -> float:
    return sum(
        v
        for labels, v in metrics["palpite_http_requests_total"]
        if labels["route"] == "/predict" and labels["status"] == "200"
    )


def test_metrics_across_workers_and_hup(start_gunicorn, releases):
    server = start_gunicorn(workers=3)
    old_pids = server.worker_pids()
    assert len(old_pids) == 3
    n = 90
    for _ in range(n):
        status, headers, _ = request(server.port, "POST", "/predict", ROW)
        assert status == 200 and headers["x-model-version"] == releases[0].name
    served_by = {line["pid"] for line in server.access_lines() if line["path"] == "/predict"}
    assert len(served_by) >= 2, "the requests did not spread over workers"

    metrics = scrape(server.port)
    assert predict_count(metrics) == n
    assert sum(v for _, v in metrics["palpite_predictions_total"]) == n
    assert {labels["version"] for labels, _ in metrics["palpite_model_info"]} == {releases[0].name}
    assert metrics["palpite_model_ready"] == [({}, 1.0)]

    move_current(server.models, releases[1].name)
    server.hup()
    server.wait_gone(old_pids)
    server.wait_booted(6)

    metrics = scrape(server.port)
    assert {labels["version"] for labels, _ in metrics["palpite_model_info"]} == {releases[1].name}
    load_versions = {labels["version"] for labels, _ in metrics["palpite_model_load_seconds"]}
    assert load_versions == {releases[1].name}
    # Counters of the workers that exited still count.
    assert predict_count(metrics) == n
    status, headers, _ = request(server.port, "POST", "/predict", ROW)
    assert headers["x-model-version"] == releases[1].name


def test_bad_model_still_starts(start_gunicorn, tmp_path):
    server = start_gunicorn(workers=1, PALPITE_MODEL_DIR=str(tmp_path / "nothing"))
    status, _, body = request(server.port, "GET", "/health/live")
    assert status == 200
    status, _, body = request(server.port, "GET", "/health/ready")
    assert status == 503 and b"no model at" in body
    status, _, body = request(server.port, "POST", "/predict", ROW)
    assert status == 503 and b"no_model" in body
