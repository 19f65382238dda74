"""Prometheus metrics, correct across gunicorn workers.

Under gunicorn, gunicorn.conf.py exports PROMETHEUS_MULTIPROC_DIR before any worker
starts: every worker then writes its values to files there, /metrics (answered by any
one worker) merges all of them, and `child_exit` marks dead workers so their live-mode
gauges (the model version) disappear while their counters keep counting.
Without that variable (tests, a bare `uvicorn`) each app gets its own registry.
"""

import os
from bisect import bisect_left
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from app.end_of_pass import EndOfPass

# Seconds; single predictions sit around a millisecond, 10,000-row batches near 100 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST
# Any other method a client sends counts as OTHER: label values must stay a bounded set.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# `*_created` series double the output and no dashboard here reads them.
disable_created_metrics()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """The service's metrics. Request and prediction updates wait up to `flush_seconds`
    (0: to the end of the event loop's pass) to be written with the next ones."""

    def __init__(self, flush_seconds: float = 0.0) -> None:
        self.multiprocess = multiprocess_dir() is not None
        # In multiprocess mode values live in files, and collection goes through a fresh
        # MultiProcessCollector, so the metric objects belong to no registry.
        self._registry = None if self.multiprocess else CollectorRegistry()
        reg = self._registry
        self.requests = Counter(
            "palpite_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=reg,
        )
        self.latency = Histogram(
            "palpite_http_request_duration_seconds",
            "Time from request start to the end of the response, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.predictions = Counter(
            "palpite_predictions",
            "Rows predicted, by predicted label.",
            ["label"],
            registry=reg,
        )
        self.model_info = Gauge(
            "palpite_model_info",
            "1 for the model version a live worker serves.",
            ["name", "version"],
            multiprocess_mode="livemax",
            registry=reg,
        )
        self.model_ready = Gauge(
            "palpite_model_ready",
            "1 if every live worker has a valid model, else 0.",
            multiprocess_mode="livemin",
            registry=reg,
        )
        self.model_load_seconds = Gauge(
            "palpite_model_load_seconds",
            "Time the live workers took to verify and load their model (the slowest).",
            ["version"],
            multiprocess_mode="livemax",
            registry=reg,
        )

        # `labels()` takes a lock and builds a key on every call; the set of children is
        # small and fixed (routes x methods x statuses), so each is looked up once.
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._prediction_children: dict[str, Any] = {}
        # Each update is a locked write to a file in multiprocess mode. Inside an event
        # loop the updates are added up per value and written together `flush_seconds`
        # after the first (and before this worker renders /metrics, and when it stops):
        # another worker's /metrics sees them at most that late. At moderate rates most
        # loop passes answer one request, so a flush per pass was one set of file writes
        # per request (docs/benchmarks.md, session 18).
        self._pending: dict[Any, float] = {}
        self._end_of_pass = EndOfPass(self.flush, delay=flush_seconds)

    def record_request(self, route: str, method: str, status: int, seconds: float) -> None:
        # Keyed by the label, not the raw method: clients choose methods, not the cache size.
        key = (route, method if method in METHODS else "OTHER", status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, key[1], str(status)),
                self.latency.labels(route),
            )
            self._request_children[key] = children
        # As counter.inc() and histogram.observe(seconds): the count, the sum, and the
        # first bucket whose bound is >= seconds (prometheus_client's own rule; buckets
        # are cumulated when collected).
        histogram = children[1]
        self._add(children[0]._value, 1.0)
        self._add(histogram._sum, seconds)
        self._add(histogram._buckets[bisect_left(histogram._upper_bounds, seconds)], 1.0)
        self._end_of_pass.request()

    def record_predictions(self, label: str, count: int) -> None:
        child = self._prediction_children.get(label)
        if child is None:
            child = self._prediction_children[label] = self.predictions.labels(label)
        self._add(child._value, float(count))
        self._end_of_pass.request()

    def _add(self, value: Any, amount: float) -> None:
        """Pending until the flush its caller asks `_end_of_pass` for (once per record)."""
        pending = self._pending
        pending[value] = pending.get(value, 0.0) + amount

    def flush(self) -> None:
        """Write the pending updates."""
        pending, self._pending = self._pending, {}
        for value, amount in pending.items():
            value.inc(amount)

    def render(self) -> bytes:
        self.flush()
        if self._registry is not None:
            return generate_latest(self._registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
