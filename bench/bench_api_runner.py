"""The machinery under bench_api.py: a gunicorn server started and stopped, wrk driven
against it, and what is read around a run (PSS from /proc, the connection spread from
`ss`, a timer for in-process calls). What to measure, and in what order, stays in
bench_api.py.
"""

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).parent / "gunicorn"
WRK_SCRIPT = Path(__file__).parent / "wrk_post.lua"
PORT = 18600


class Server:
    """gunicorn on 127.0.0.1:PORT, started in __init__ (returns once every worker has
    started), until stop()."""

    def __init__(
        self,
        app: str | None,
        workers: int,
        reuse_port: bool,
        log: Path,
        model: Path,
        plain_estimator: Path | None = None,
        checkout: Path = REPO,
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PALPITE_", "PROMETHEUS_"))}
        env |= {
            # That checkout's app, whatever the venv's .pth points at (a git worktree).
            "PYTHONPATH": str(checkout),
            "PALPITE_MODEL_DIR": str(model),
            "PALPITE_BIND": f"127.0.0.1:{PORT}",
            "PALPITE_WORKERS": str(workers),
            "PALPITE_REUSE_PORT": "1" if reuse_port else "0",
            # The JSON access log stays on: it is part of what a request costs.
            "PALPITE_ACCESS_LOG": str(log.with_suffix(".access")),
        }
        cmd = [str(GUNICORN), "-c", "app/gunicorn.conf.py", *([app] if app else [])]
        if plain_estimator:  # gunicorn's own defaults, as a first app would run
            env["BENCH_MINIMAL_ESTIMATOR"] = str(plain_estimator)  # bench/minimal_app.py
            cmd = [str(GUNICORN), "-w", str(workers), "-k", "uvicorn_worker.UvicornWorker",
                   "-b", f"127.0.0.1:{PORT}", "--log-level", "info", str(app)]  # fmt: skip
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=checkout, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 180
        while log.read_text().count("Application startup complete") < workers:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"server did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)


def pss_mib(pid: int) -> float:
    """Proportional set size of a process and its children (a gunicorn master and its
    workers), MiB: shared pages (the master's pre-imports) counted once in total."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(c) for c in (task / "children").read_text().split()]
    total_kib = 0
    for p in pids:
        for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total_kib += int(line.split()[1])
    return total_kib / 1024


def connection_spread() -> list[int]:
    """Established connections per worker pid on the bench port, largest first."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{PORT} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    pids = Counter(re.findall(r"pid=(\d+)", out))
    return sorted(pids.values(), reverse=True)


def pacing(rate: float, threads: int) -> tuple[dict[str, str], dict[str, float]]:
    """What bench/wrk_post.lua is told to send `rate` requests/s over `threads` wrk
    threads (its environment), and what the run records of it: the rate asked for and
    the interval between each wrk thread's send slots."""
    env = {"WRK_RATE": f"{rate:.3f}", "WRK_THREADS": str(threads)}
    return env, {"requested_rps": rate, "wrk_thread_interval_ms": threads / rate * 1000}


def wrk_invocation(
    url: str,
    body: Path,
    connections: int,
    duration: int,
    threads: int,
    rate: float = 0,
    count_statuses: bool = False,
) -> tuple[list[str], dict[str, str]]:
    """The command and environment of one wrk run POSTing `body` to `url` with
    wrk_post.lua: paced at `rate` requests/s when above 0, its answers counted by status
    when `count_statuses`. No WRK_* variable of the caller's environment leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WRK_")}
    env["WRK_BODY"] = str(body)
    if rate > 0:
        env |= pacing(rate, threads)[0]
    if count_statuses:
        env["WRK_STATUSES"] = "1"
    cmd = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
        "-s", str(WRK_SCRIPT), url,
    ]  # fmt: skip
    return cmd, env


def wrk(
    body: Path,
    connections: int,
    duration: int,
    threads: int = 2,
    rate: float = 0,
    path: str = "/predict",
) -> dict[str, Any]:
    """One wrk run POSTing `body`: its WRK_JSON summary, with requests/s, the connection
    spread mid-run and, when paced (`rate` requests/s, sent on a clock by wrk_post.lua;
    latency from send to answer, as wrk measures it), the rate asked for."""
    url = f"http://127.0.0.1:{PORT}{path}"
    cmd, env = wrk_invocation(url, body, connections, duration, threads, rate)
    paced_fields = pacing(rate, threads)[1] if rate > 0 else {}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    time.sleep(duration / 2)
    spread = connection_spread()
    stdout, _ = proc.communicate(timeout=duration + 30)
    result = wrk_summary(stdout)
    result["spread"] = spread
    # Whether a paced run held its rate is judged against requested_rps: a server that
    # keeps up is sent that rate; one that does not falls behind the schedule.
    result |= paced_fields
    return result


def wrk_summary(stdout: str) -> dict[str, Any]:
    """The summary wrk_post.lua prints (its WRK_JSON line), with requests/s."""
    line = next(x for x in stdout.splitlines() if x.startswith("WRK_JSON "))
    result = json.loads(line.removeprefix("WRK_JSON "))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def timed(fn: Callable[[], Any], seconds: float) -> float:
    """Median seconds per call over `seconds` of calls (at least 5)."""
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
