"""Metric updates made in one pass of the event loop (or within `flush_seconds`) are
written together, add up to what prometheus_client's own inc() and observe() would
record, and a stopping app writes what still waits."""

import asyncio
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Counter, Histogram

from app.main import create_app
from app.metrics import LATENCY_BUCKETS, Metrics
from app.settings import Settings

# Every bucket, its exact bounds, between them and past the last.
SECONDS = [0.0, 0.0004, *LATENCY_BUCKETS, 0.003, 0.07, 3.0, 7.5, 100.0]


def samples(metric) -> dict[tuple, float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in metric.collect()
        for s in family.samples
    }


def reference() -> tuple[Counter, Histogram]:
    registry = CollectorRegistry()
    requests = Counter(
        "palpite_http_requests", "", ["route", "method", "status"], registry=registry
    )
    latency = Histogram("palpite_http_request_duration_seconds", "", ["route"],
                        buckets=LATENCY_BUCKETS, registry=registry)  # fmt: skip
    for seconds in SECONDS:
        requests.labels("/predict", "POST", "200").inc()
        latency.labels("/predict").observe(seconds)
    return requests, latency


def test_one_pass_is_written_at_its_end_as_inc_and_observe_would() -> None:
    metrics = Metrics()

    async def requests() -> None:
        for seconds in SECONDS:
            metrics.record_request("/predict", "POST", 200, seconds)
        metrics.record_predictions("draw", 3)
        assert set(samples(metrics.requests).values()) <= {0.0}  # pending, not written
        await asyncio.sleep(0)
        assert (
            samples(metrics.predictions)[("palpite_predictions_total", (("label", "draw"),))] == 3
        )

    asyncio.run(requests())
    want_requests, want_latency = reference()
    assert samples(metrics.requests) == samples(want_requests)
    assert samples(metrics.latency) == samples(want_latency)


def test_render_writes_what_is_pending() -> None:
    metrics = Metrics()

    async def scrape() -> bytes:
        metrics.record_predictions("home_win", 2)
        return metrics.render()

    assert b'palpite_predictions_total{label="home_win"} 2.0' in asyncio.run(scrape())


def test_outside_a_loop_updates_are_written_at_once() -> None:
    metrics = Metrics()
    metrics.record_request("/model", "GET", 503, 0.002)
    key = (
        "palpite_http_requests_total",
        (("method", "GET"), ("route", "/model"), ("status", "503")),
    )
    assert samples(metrics.requests)[key] == 1


PREDICT_OK = (
    "palpite_http_requests_total",
    (("method", "POST"), ("route", "/predict"), ("status", "200")),
)


def test_updates_within_flush_seconds_share_one_write() -> None:
    metrics = Metrics(flush_seconds=0.05)

    async def requests() -> None:
        for _ in range(3):  # three passes of the loop, one request each
            metrics.record_request("/predict", "POST", 200, 0.001)
            await asyncio.sleep(0)
        assert set(samples(metrics.requests).values()) <= {0.0}  # still waiting
        await asyncio.sleep(0.1)
        assert samples(metrics.requests)[PREDICT_OK] == 3

    asyncio.run(requests())


def test_a_stopping_app_writes_the_counts_still_waiting(vector_bundle: Path) -> None:
    app = create_app(Settings(model_dir=vector_bundle, record_flush_seconds=1))
    metrics = app.state.ctx.metrics
    with TestClient(app) as client:  # runs the lifespan, as a gunicorn worker does
        assert client.post("/predict", json={"features": [1, 2, 3, 4]}).status_code == 200
        assert samples(metrics.requests).get(PREDICT_OK, 0.0) == 0.0  # waiting
    assert samples(metrics.requests)[PREDICT_OK] == 1
    assert sum(samples(metrics.predictions).values()) == 1
