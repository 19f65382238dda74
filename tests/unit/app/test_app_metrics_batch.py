"""Metric updates made in one pass of the event loop are written together when the pass
ends, and add up to what prometheus_client's own inc() and observe() would record."""

import asyncio

from prometheus_client import CollectorRegistry, Counter, Histogram

from app.metrics import LATENCY_BUCKETS, Metrics

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
