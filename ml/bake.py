"""The bake period's judgement: did the canary serve real traffic as well as it should?

Reads the service's Prometheus text (`/metrics`, merged over the live workers) taken at
the start and the end of the bake window, on the canary and on the hosts still on the old
model. Over the window it takes deltas of requests, 5xx answers and the latency histogram
(counters carry on across a HUP and start again after a restart: an "after" below its
"before" is read as a reset, the whole "after" being the window's), leaving out health
checks and /metrics, which say nothing about the model. Then it compares:
  - with absolute limits: 5xx ratio <= max_5xx_ratio, p99 <= max_p99_seconds;
  - with the old hosts over the same window (when they served at least min_requests):
    5xx ratio no worse by more than max_5xx_points, p99 no more than max_p99_factor times
    (the canary's p99 bucket must lie wholly above the factor: a histogram cannot tell
    p99s one bucket apart);
  - and a gate never passes on no data: fewer than min_requests requests on the canary is
    a breach unless allow_idle.

    python -m ml.bake --canary BEFORE AFTER [--baseline BEFORE AFTER ...] [limits]

prints the figures and each breach; exits 0 when the canary passes, 4 when it breaches
(1 when a text cannot be read).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

EXIT_BREACH = 4
REQUESTS = "palpite_http_requests_total"
BUCKETS = "palpite_http_request_duration_seconds_bucket"
# Routes that are not the model's traffic: the load balancer's checks and the scraper.
IGNORED_ROUTES = frozenset({"/metrics", "/health/live", "/health/ready", "/v2/health/live",
                            "/v2/health/ready"})  # fmt: skip
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass
class Counts:
    """What a host answered: requests, 5xx, and the cumulative latency histogram."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound -> cumulative

    def minus(self, before: Counts) -> Counts:
        if self.requests < before.requests or any(
            self.buckets.get(le, 0.0) < n for le, n in before.buckets.items()
        ):
            return self  # the service restarted within the window: its counters began at 0
        return Counts(
            self.requests - before.requests,
            self.errors - before.errors,
            {le: n - before.buckets.get(le, 0.0) for le, n in self.buckets.items()},
        )

    def plus(self, other: Counts) -> Counts:
        les = self.buckets.keys() | other.buckets.keys()
        return Counts(
            self.requests + other.requests,
            self.errors + other.errors,
            {le: self.buckets.get(le, 0.0) + other.buckets.get(le, 0.0) for le in les},
        )

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def quantile(self, q: float) -> float:
        """The upper bound of the histogram bucket holding the q-quantile (inf past the last)."""
        return self.quantile_bounds(q)[1]

    def quantile_bounds(self, q: float) -> tuple[float, float]:
        """The bucket holding the q-quantile: (its lower bound, its upper bound)."""
        total = self.buckets.get(math.inf, 0.0)
        if total <= 0:
            return 0.0, 0.0
        bounds = sorted(self.buckets)
        i = next(i for i, le in enumerate(bounds) if self.buckets[le] >= q * total)
        return (bounds[i - 1] if i else 0.0), bounds[i]


def parse(text: str) -> Counts:
    """The model traffic's counts in one /metrics text."""
    counts = Counts()
    for line in text.splitlines():
        m = _SAMPLE.match(line.strip())
        if not m or m.group(1) not in (REQUESTS, BUCKETS):
            continue
        labels = dict(_LABEL.findall(m.group(2)))
        if labels.get("route") in IGNORED_ROUTES:
            continue
        value = float(m.group(3))
        if m.group(1) == REQUESTS:
            counts.requests += value
            counts.errors += value if labels.get("status", "").startswith("5") else 0.0
        else:
            le = float(labels["le"])  # "+Inf" parses as inf
            counts.buckets[le] = counts.buckets.get(le, 0.0) + value
    return counts


@dataclass(frozen=True)
class Limits:
    max_5xx_ratio: float = 0.01
    max_p99_seconds: float = 0.5
    max_5xx_points: float = 0.01
    max_p99_factor: float = 2.0
    min_requests: int = 50
    allow_idle: bool = False


def judge(canary: Counts, baseline: Counts | None, limits: Limits) -> tuple[list[str], list[str]]:
    """(figures, breaches) for the canary's window against the limits and the baseline."""
    p99 = canary.quantile(0.99)
    figures = [
        f"canary: {canary.requests:.0f} requests, {canary.errors:.0f} 5xx"
        f" ({canary.error_ratio:.2%}), p99 <= {p99:g} s"
    ]
    breaches = []
    if canary.requests < limits.min_requests and not limits.allow_idle:
        breaches.append(
            f"too few requests on the canary to judge: {canary.requests:.0f}"
            f" < {limits.min_requests} (release_bake_min_requests;"
            " release_bake_allow_idle=true passes an idle canary)"
        )
    if canary.error_ratio > limits.max_5xx_ratio:
        breaches.append(f"5xx ratio {canary.error_ratio:.2%} > {limits.max_5xx_ratio:.2%}")
    if p99 > limits.max_p99_seconds:
        breaches.append(f"p99 {p99:g} s > {limits.max_p99_seconds:g} s")
    if baseline is not None and baseline.requests >= limits.min_requests:
        old_p99 = baseline.quantile(0.99)
        figures.append(
            f"old hosts: {baseline.requests:.0f} requests, {baseline.errors:.0f} 5xx"
            f" ({baseline.error_ratio:.2%}), p99 <= {old_p99:g} s"
        )
        if canary.error_ratio - baseline.error_ratio > limits.max_5xx_points:
            breaches.append(
                f"5xx ratio {canary.error_ratio:.2%} vs the old hosts' {baseline.error_ratio:.2%}:"
                f" more than {limits.max_5xx_points:.0%} points worse"
            )
        # A histogram places a p99 within one bucket: the canary is slower by more than
        # the factor only when even its bucket's lower bound is (neighbouring buckets are
        # 2-2.5x apart, so one bucket's noise never fails a release).
        if old_p99 > 0 and canary.quantile_bounds(0.99)[0] >= limits.max_p99_factor * old_p99:
            breaches.append(
                f"p99 {p99:g} s vs the old hosts' {old_p99:g} s: more than"
                f" {limits.max_p99_factor:g}x"
            )
    elif baseline is not None:
        figures.append(f"old hosts: {baseline.requests:.0f} requests, too few to compare with")
    return figures, breaches


def _window(before: Path, after: Path) -> Counts:
    return parse(after.read_text()).minus(parse(before.read_text()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.bake", description=__doc__)
    parser.add_argument("--canary", nargs=2, type=Path, required=True, metavar=("BEFORE", "AFTER"))
    parser.add_argument(
        "--baseline",
        nargs=2,
        type=Path,
        action="append",
        default=[],
        metavar=("BEFORE", "AFTER"),
        help="an old host's two texts (repeatable)",
    )
    defaults = Limits()
    parser.add_argument("--max-5xx-ratio", type=float, default=defaults.max_5xx_ratio)
    parser.add_argument("--max-p99-seconds", type=float, default=defaults.max_p99_seconds)
    parser.add_argument("--max-5xx-points", type=float, default=defaults.max_5xx_points)
    parser.add_argument("--max-p99-factor", type=float, default=defaults.max_p99_factor)
    parser.add_argument("--min-requests", type=int, default=defaults.min_requests)
    parser.add_argument("--allow-idle", action="store_true")
    args = parser.parse_args(argv)
    limits = Limits(args.max_5xx_ratio, args.max_p99_seconds, args.max_5xx_points,
                    args.max_p99_factor, args.min_requests, args.allow_idle)  # fmt: skip
    try:
        canary = _window(*args.canary)
        baseline = None
        for before, after in args.baseline:
            window = _window(before, after)
            baseline = window if baseline is None else baseline.plus(window)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: cannot read the metrics of the bake window: {exc!r}", file=sys.stderr)
        return 1
    figures, breaches = judge(canary, baseline, limits)
    for line in figures:
        print(line)
    for line in breaches:
        print(f"breach: {line}")
    return EXIT_BREACH if breaches else 0


if __name__ == "__main__":
    sys.exit(main())
