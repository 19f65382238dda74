"""The bake period's judgement (ml/bake.py) on /metrics texts written by prometheus_client
with the service's own metric names and buckets (app/metrics.py)."""

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from app.metrics import LATENCY_BUCKETS
from ml.bake import EXIT_BREACH, Counts, Limits, judge, main, parse


class Host:
    """A host's service: its counters, and /metrics as the service writes it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("palpite_http_requests", "", ["route", "method", "status"],
                                registry=self.registry)  # fmt: skip
        self.latency = Histogram("palpite_http_request_duration_seconds", "", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)  # fmt: skip

    def serve(self, n: int, seconds: float, status: int = 200, route: str = "/predict") -> None:
        for _ in range(n):
            self.requests.labels(route, "POST", str(status)).inc()
            self.latency.labels(route).observe(seconds)

    def metrics(self) -> str:
        return generate_latest(self.registry).decode()


def window(host: Host, traffic) -> Counts:
    before = parse(host.metrics())
    traffic(host)
    return parse(host.metrics()).minus(before)


def test_health_checks_and_scrapes_are_not_the_models_traffic() -> None:
    host = Host()
    host.serve(30, 0.004)
    host.serve(2, 0.004, status=503)
    host.serve(500, 0.001, route="/health/ready")
    host.serve(100, 0.001, route="/metrics")
    counts = parse(host.metrics())
    assert (counts.requests, counts.errors) == (32, 2)
    assert counts.quantile(0.99) == 0.005


def test_the_window_is_a_delta_and_a_restart_starts_it_again() -> None:
    host = Host()
    host.serve(1000, 0.2)  # before the window: slow, but not the canary's doing
    counts = window(host, lambda h: h.serve(100, 0.004))
    assert counts.requests == 100
    assert counts.quantile(0.99) == 0.005
    restarted = Host()  # counters from 0 after a restart within the window
    restarted.serve(40, 0.004)
    assert parse(restarted.metrics()).minus(parse(host.metrics())).requests == 40


def test_a_canary_like_the_old_hosts_passes_with_its_figures() -> None:
    canary = window(Host(), lambda h: h.serve(200, 0.004))
    old = window(Host(), lambda h: h.serve(400, 0.003))
    figures, breaches = judge(canary, old, Limits())
    assert breaches == []
    assert figures == [
        "canary: 200 requests, 0 5xx (0.00%), p99 <= 0.005 s",
        "old hosts: 400 requests, 0 5xx (0.00%), p99 <= 0.005 s",
    ]


def test_a_canary_failing_a_share_of_live_inputs_breaches_both_ways() -> None:
    def failing(h: Host) -> None:
        h.serve(190, 0.004)
        h.serve(10, 0.004, status=500)

    canary = window(Host(), failing)
    old = window(Host(), lambda h: h.serve(400, 0.004))
    _, breaches = judge(canary, old, Limits())
    assert breaches == [
        "5xx ratio 5.00% > 1.00%",
        "5xx ratio 5.00% vs the old hosts' 0.00%: more than 1% points worse",
    ]


def test_a_slow_canary_breaches_the_limit_and_the_comparison() -> None:
    canary = window(Host(), lambda h: h.serve(200, 0.8))
    old = window(Host(), lambda h: h.serve(200, 0.02))
    _, breaches = judge(canary, old, Limits())
    assert breaches == ["p99 1 s > 0.5 s", "p99 1 s vs the old hosts' 0.025 s: more than 2x"]
    # Slower than the old hosts but within the absolute limit: the comparison alone.
    canary = window(Host(), lambda h: h.serve(200, 0.2))
    _, breaches = judge(canary, old, Limits())
    assert breaches == ["p99 0.25 s vs the old hosts' 0.025 s: more than 2x"]
    # One bucket up (0.025 -> 0.05 s) is within a histogram's resolution: no breach.
    canary = window(Host(), lambda h: h.serve(200, 0.03))
    assert judge(canary, old, Limits())[1] == []


def test_a_gate_never_passes_on_no_data_unless_told() -> None:
    canary = window(Host(), lambda h: h.serve(10, 0.004))
    _, breaches = judge(canary, None, Limits())
    assert len(breaches) == 1 and breaches[0].startswith("too few requests on the canary")
    assert judge(canary, None, Limits(allow_idle=True))[1] == []
    # Old hosts with too little traffic are not compared with, and the figures say so.
    old = window(Host(), lambda h: h.serve(3, 2.0, status=500))
    figures, breaches = judge(window(Host(), lambda h: h.serve(60, 0.004)), old, Limits())
    assert breaches == []
    assert figures[1] == "old hosts: 3 requests, too few to compare with"


def test_the_command_exits_4_on_a_breach(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def texts(name: str, traffic) -> list[str]:
        host = Host()
        (tmp_path / f"{name}-before").write_text(host.metrics())
        traffic(host)
        (tmp_path / f"{name}-after").write_text(host.metrics())
        return [str(tmp_path / f"{name}-before"), str(tmp_path / f"{name}-after")]

    good = texts("good", lambda h: h.serve(100, 0.004))
    bad = texts("bad", lambda h: h.serve(100, 0.004, status=502))
    old = texts("old", lambda h: h.serve(100, 0.004))
    assert main(["--canary", *good, "--baseline", *old, "--baseline", *old]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("old hosts: 200 requests")
    assert main(["--canary", *bad, "--baseline", *old]) == EXIT_BREACH
    out = capsys.readouterr().out
    assert "breach: 5xx ratio 100.00% > 1.00%" in out
    assert main(["--canary", *good, "--min-requests", "500", "--allow-idle"]) == 0
    assert main(["--canary", str(tmp_path / "missing"), good[1]]) == 1
