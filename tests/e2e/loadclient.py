"""A bounded, fixed-rate HTTP load client that logs every request (the release tests' witness).

Open loop: request i is due at start + i / rate, whatever the earlier ones are doing, so a
slow or stalled server shows up as errors and latency instead of quietly lowering the rate.
Every request is logged with its planned time, start and end (epoch seconds, this machine's
clock, the same clock the release playbook's events use), HTTP status or error, the app host
that answered (the front door's `X-Palpite-Upstream`) and the model that answered
(`X-Model-Version`).

Bounded in count and time: it stops at `max_seconds` or `max_requests`, whichever comes
first, or earlier when `stop()` is called (but never before `min_seconds`). A due request
that cannot go out (more than `concurrency` in flight, or the client itself more than
`max_lag` seconds late) is counted as planned but not sent, rather than sent in a burst.

Each request uses a new connection (many independent clients, as behind a load balancer),
sent by http_once.request_once on uvloop's event loop: the client's own CPU per request is
a cost every lane pays on a shared machine. A request's path may be a whole URL, so one
client can send to several hosts in turn (Report.only tells them apart).

    tls = ssl.create_default_context(cafile=".local-ca/ca.crt")  # the local CA
    predict = Request("POST", "/predict", {"home_team": "A", "away_team": "B"})
    with LoadClient("https://10.231.0.2", 100, [predict], max_seconds=300, tls=tls) as load:
        ...                            # the release
    report = load.report               # after the block: stopped, every request finished

CLI (measures, then runs at a rate):
    python -m tests.e2e.loadclient https://10.231.0.2 --cacert .local-ca/ca.crt --measure 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import ssl
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvloop

from tests.e2e.http_once import BadResponseError, request_once

UPSTREAM_HEADER = "x-palpite-upstream"
VERSION_HEADER = "x-model-version"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    json: Any = None


@dataclass
class Sample:
    seq: int
    planned: float
    start: float | None = None
    end: float | None = None
    status: int | None = None
    error: str | None = None
    upstream: str | None = None
    version: str | None = None
    path: str = ""

    @property
    def sent(self) -> bool:
        return self.start is not None

    @property
    def failed(self) -> bool:
        return self.sent and (self.error is not None or self.status is None or self.status >= 400)


@dataclass
class Report:
    rate: float
    started: float
    stopped: float
    samples: list[Sample] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.stopped - self.started

    @property
    def planned(self) -> int:
        return len(self.samples)

    @property
    def sent(self) -> list[Sample]:
        return [s for s in self.samples if s.sent]

    @property
    def errors(self) -> list[Sample]:
        return [s for s in self.sent if s.error is not None]

    @property
    def failures(self) -> list[Sample]:
        return [s for s in self.sent if s.failed]

    def statuses(self) -> Counter[int | str]:
        return Counter(s.status if s.status is not None else s.error or "?" for s in self.sent)

    def by_upstream(self) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = {}
        for s in self.sent:
            out.setdefault(s.upstream or "?", Counter())[s.version or "?"] += 1
        return out

    def only(self, path: str) -> Report:
        """The samples sent to `path` (a load cycling over several requests, told apart)."""
        return Report(
            self.rate, self.started, self.stopped, [s for s in self.samples if s.path == path]
        )

    def latency_ms(self, q: float) -> float:
        times = sorted((s.end - s.start) * 1000 for s in self.sent if s.end and s.start)
        if not times:
            return math.nan
        return times[min(len(times) - 1, int(q * len(times)))]

    def summary(self) -> dict[str, Any]:
        sent = self.sent
        return {
            "rate": self.rate,
            "seconds": round(self.duration, 1),
            "planned": self.planned,
            "sent": len(sent),
            "sent_fraction": round(len(sent) / self.planned, 4) if self.planned else 0.0,
            "achieved_rate": round(len(sent) / self.duration, 1) if self.duration else 0.0,
            "errors": len(self.errors),
            "failures": len(self.failures),
            "statuses": {str(k): v for k, v in sorted(self.statuses().items(), key=str)},
            "by_upstream": {k: dict(v) for k, v in sorted(self.by_upstream().items())},
            "latency_ms": {
                "p50": round(self.latency_ms(0.50), 1),
                "p99": round(self.latency_ms(0.99), 1),
                "max": round(self.latency_ms(1.0), 1),
            },
        }

    def write_jsonl(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as out:
            for s in self.samples:
                out.write(json.dumps(asdict(s)) + "\n")


def _client(
    base_url: str, timeout: float, keepalive: bool, concurrency: int, tls: ssl.SSLContext | None
) -> httpx.AsyncClient:
    # measure_max's client. Its closed-loop maximum sets the release tests' paced rate (half
    # of it), and the suite was tuned with httpx measuring it: a leaner client would measure
    # more and pace every release at a higher rate than the one the suite was tuned at.
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency if keepalive else 0
    )
    headers = {} if keepalive else {"Connection": "close"}
    # trust_env=False: never a proxy from the environment; only the given address is contacted.
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout,
        limits=limits,
        headers=headers,
        trust_env=False,
        verify=tls or True,
    )


async def _send(
    base_url: str, request: Request, sample: Sample, tls: ssl.SSLContext | None, timeout: float
) -> None:
    sample.path = request.path
    url = (
        request.path
        if request.path.startswith(("http://", "https://"))
        else base_url + request.path
    )
    sample.start = time.time()
    try:
        answer = await request_once(request.method, url, request.json, tls=tls, timeout=timeout)
        sample.status = answer.status
        sample.upstream = answer.headers.get(UPSTREAM_HEADER)
        sample.version = answer.headers.get(VERSION_HEADER)
    except (OSError, BadResponseError) as exc:  # TimeoutError and ssl.SSLError are OSErrors
        sample.error = f"{type(exc).__name__}: {exc}"[:300]
    finally:
        sample.end = time.time()


class LoadClient:
    """Fixed-rate load in a background thread (its own event loop); see the module doc."""

    def __init__(
        self,
        base_url: str,
        rate: float,
        requests: Sequence[Request],
        *,
        max_seconds: float,
        max_requests: int | None = None,
        min_seconds: float = 0.0,
        concurrency: int = 200,
        timeout: float = 15.0,
        max_lag: float = 1.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        if rate <= 0 or max_seconds <= 0 or not requests:
            raise ValueError("rate and max_seconds must be positive, requests not empty")
        self.base_url = base_url
        self.rate = rate
        self.requests = list(requests)
        self.max_seconds = max_seconds
        self.max_requests = max_requests or math.ceil(rate * max_seconds)
        self.min_seconds = min_seconds
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_lag = max_lag
        self.tls = tls  # HTTPS: the context trusting the server's CA (None: the system's)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._report: Report | None = None
        self._error: BaseException | None = None

    def start(self) -> LoadClient:
        self._thread = threading.Thread(target=self._main, name="loadclient", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask it to stop (it keeps going until min_seconds have passed)."""
        self._stop.set()

    def join(self) -> Report:
        assert self._thread is not None
        # Bounded: max_seconds, then the last requests' timeout.
        self._thread.join(self.max_seconds + self.timeout + 30)
        if self._thread.is_alive():
            raise RuntimeError("load client did not finish")
        if self._error is not None:
            raise self._error
        assert self._report is not None
        return self._report

    @property
    def report(self) -> Report:
        assert self._report is not None, "join() first"
        return self._report

    def __enter__(self) -> LoadClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.join()

    def _main(self) -> None:
        try:
            self._report = asyncio.run(self._run(), loop_factory=uvloop.new_event_loop)
        except BaseException as exc:  # surfaced by join()
            self._error = exc

    async def _run(self) -> Report:
        interval = 1.0 / self.rate
        started = time.time()
        report = Report(self.rate, started, started)
        tasks: set[asyncio.Task[None]] = set()
        for seq in range(self.max_requests):
            due = started + seq * interval
            if due - started >= self.max_seconds:
                break
            if self._stop.is_set() and due - started >= self.min_seconds:
                break
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sample = Sample(seq, due)
            report.samples.append(sample)
            if time.time() - due > self.max_lag or len(tasks) >= self.concurrency:
                continue  # planned, not sent
            request = self.requests[seq % len(self.requests)]
            task = asyncio.create_task(
                _send(self.base_url, request, sample, self.tls, self.timeout)
            )
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        # The load's window ends where its first unplanned slot would begin, one
        # interval after the last request: wait for it, so the load lasts the window
        # it was asked for (a 30 s load is not over at 29.995 s).
        # (uvloop's timers have millisecond resolution and may wake a fraction early.)
        window_end = started + len(report.samples) * interval
        while (left := window_end - time.time()) > 0:
            await asyncio.sleep(left)
        report.stopped = time.time()
        if tasks:
            await asyncio.wait(tasks)
        return report


def measure_max(
    base_url: str,
    requests: Sequence[Request],
    *,
    seconds: float = 5.0,
    concurrency: int = 16,
    keepalive: bool = False,
    tls: ssl.SSLContext | None = None,
) -> dict[str, Any]:
    """Closed loop: `concurrency` workers back to back for `seconds`; successful requests/s."""

    async def run() -> dict[str, Any]:
        ok = 0
        other: Counter[str] = Counter()
        latencies: list[float] = []
        deadline = 0.0

        async def worker(n: int) -> None:
            nonlocal ok
            i = n
            while time.monotonic() < deadline:
                request = requests[i % len(requests)]
                i += concurrency
                t = time.monotonic()
                try:
                    r = await client.request(request.method, request.path, json=request.json)
                    if r.status_code < 400:
                        ok += 1
                        latencies.append(time.monotonic() - t)
                    else:
                        other[str(r.status_code)] += 1
                except httpx.HTTPError as exc:
                    other[type(exc).__name__] += 1

        async with _client(base_url, 15.0, keepalive, concurrency, tls) as client:
            start = time.monotonic()
            deadline = start + seconds
            await asyncio.gather(*(worker(n) for n in range(concurrency)))
            elapsed = time.monotonic() - start
        return {
            "ok_per_second": round(ok / elapsed, 1),
            "ok": ok,
            "other": dict(other),
            "seconds": round(elapsed, 1),
            "concurrency": concurrency,
            "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        }

    return asyncio.run(run())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loadclient", description=__doc__.splitlines()[0])
    parser.add_argument("url", help="base URL, e.g. https://10.231.0.2")
    parser.add_argument("--path", default="/health/ready")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--json", default=None, help="request body (JSON text)")
    parser.add_argument("--measure", type=float, default=0.0, help="seconds of closed-loop max")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=0.0, help="req/s (default: half the max)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--keepalive", action="store_true", help="--measure reuses connections")
    parser.add_argument("--cacert", type=Path, help="HTTPS: trust this CA (PEM) only")
    parser.add_argument("--out", type=Path, help="write every request as JSON lines")
    args = parser.parse_args(argv)
    body = json.loads(args.json) if args.json else None
    requests = [Request(args.method, args.path, body)]
    rate = args.rate
    tls = ssl.create_default_context(cafile=args.cacert) if args.cacert else None
    if args.measure:
        result = measure_max(
            args.url,
            requests,
            seconds=args.measure,
            concurrency=args.concurrency,
            keepalive=args.keepalive,
            tls=tls,
        )
        print(json.dumps({"max": result}))
        rate = rate or result["ok_per_second"] / 2
    if rate <= 0:
        parser.error("give --rate or --measure")
    if args.seconds > 600:
        parser.error("--seconds is capped at 600")
    load = LoadClient(args.url, rate, requests, max_seconds=args.seconds, tls=tls).start()
    report = load.join()
    print(json.dumps(report.summary()))
    if args.out:
        report.write_jsonl(args.out)
    return 0 if not report.failures else 1


if __name__ == "__main__":
    sys.exit(main())
