# ruff: noqa: N999  (gunicorn looks for this file name; it is not imported as a module)
"""gunicorn settings for the palpite model API: the one place they live.

Run:  gunicorn -c app/gunicorn.conf.py            (from the project directory)
Reload a new model:  move `<models_dir>/current`, then `kill -HUP <master pid>`
(systemd: ExecReload=/bin/kill -HUP $MAINPID).

Environment (all optional; the app's own settings are PALPITE_* too, see app/settings.py):
  PALPITE_BIND         unix:/run/palpite/gunicorn.sock, or 127.0.0.1:PORT (default
                       127.0.0.1:8000). Nothing else: the service sits behind the proxy.
  PALPITE_WORKERS      worker processes (default: the CPUs this process may run on).
  PALPITE_METRICS_DIR  prometheus_client multiprocess directory, emptied at start-up
                       (default: a fresh temporary directory, removed at exit).
  PALPITE_ACCESS_LOG   "-" for stdout (default), a file path, or "off".
  PALPITE_LOG_LEVEL    debug, info (default), warning, error.
  PALPITE_DRAIN_SECONDS  how long a stopping worker keeps answering its open connections
                       (with `Connection: close`) before closing them (default 5).
  PALPITE_REUSE_PORT   "1" sets SO_REUSEPORT on the listening socket (default off; see
                       docs/benchmarks.md for what it does and does not change).

Timeouts, for the proxy in front to match:
  keepalive 75 s       idle keep-alive connections are closed after this. The proxy's
                       upstream keep-alive (nginx `keepalive_timeout` in the upstream
                       block, 60 s by default) must be SHORTER, so the proxy never sends
                       a request on a connection gunicorn is closing.
  timeout 30 s         a worker silent for this long is killed and replaced. Uvicorn
                       workers report from their event loop, so one request may block
                       it at most this long (a 10,000-row batch takes ~0.1 s).
  graceful_timeout 30 s  on HUP or TERM old workers get this long to finish in-flight
                       requests. The proxy's `proxy_read_timeout` should exceed the
                       longest request, and the deploy waits this long at most.

No `preload_app`: each worker imports the app and loads the model itself after the fork,
so a HUP (new workers, old ones drained) picks up whatever `current` points to. With
preload the master would hold the old model and HUP could not change it.
"""

import ipaddress
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

wsgi_app = "app.main:create_app()"
# uvicorn_worker.UvicornWorker (uvloop + httptools) plus a drain phase on SIGTERM that
# makes a HUP swap drop no request: see app/worker.py.
worker_class = "app.worker.DrainingUvicornWorker"
proc_name = "palpite"


def _bind() -> str:
    value = os.environ.get("PALPITE_BIND", "127.0.0.1:8000")
    if value.startswith("unix:"):
        return value
    host, _, port = value.rpartition(":")
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback or not port.isdigit():
        sys.exit(f"PALPITE_BIND must be unix:PATH or a loopback HOST:PORT, got {value!r}")
    return value


bind = [_bind()]
workers = int(os.environ.get("PALPITE_WORKERS") or len(os.sched_getaffinity(0)))
reuse_port = os.environ.get("PALPITE_REUSE_PORT", "0") == "1"
# The proxy's group reaches the unix socket; nobody else does.
umask = 0o007
backlog = 2048

keepalive = 75
timeout = 30
graceful_timeout = 30
# Never recycle workers by request count: a restart reloads the model for nothing.
max_requests = 0
# gunicorn's control socket (gunicornc) defaults to one path per user, which two servers
# on one host (a benchmark, tests) would fight over; the deploy uses signals instead.
control_socket_disable = True

loglevel = os.environ.get("PALPITE_LOG_LEVEL", "info")
errorlog = "-"
_access = os.environ.get("PALPITE_ACCESS_LOG", "-")
# The app writes the access log itself (JSON, with the request id; app/middleware.py)
# through gunicorn's access-log handlers; gunicorn's access_log_format is not used by
# uvicorn workers.
accesslog = None if _access == "off" else _access

# prometheus_client picks multiprocess mode from this variable when it is first
# imported, so it is set here, before any worker exists. gunicorn re-reads this file on
# HUP: keeping an existing value keeps the counters across model swaps.
_TEMP_MARK = "_PALPITE_METRICS_DIR_IS_TEMP"
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    _dir = os.environ.get("PALPITE_METRICS_DIR")
    if not _dir:
        _dir = tempfile.mkdtemp(prefix="palpite-metrics-")
        os.environ[_TEMP_MARK] = _dir
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _dir


# Third-party libraries the master imports once, so a new worker (at start and after each
# HUP) skips ~3 s of imports (~10-20 s on a busy 2-core host; scikit-learn pulls in
# scipy.stats and pandas) and only loads the bundle. Never the project's own modules
# (app, ml): those, and the model, are imported fresh by every new worker, so a HUP after
# a code-and-model deploy runs the new feature code. Library upgrades need a restart.
PREIMPORT = (
    "numpy",
    "scipy.sparse",
    "sklearn.base",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "joblib",
    "fastapi",
    "jinja2",
    "orjson",
    "prometheus_client",
)


def on_starting(server: Any) -> None:
    # Files left by an earlier master would be summed into this one's counters.
    path = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    import importlib

    for name in PREIMPORT:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # a missing library is the worker's error to report
            server.log.warning("pre-import of %s failed: %s", name, exc)


def post_fork(server: Any, worker: Any) -> None:
    # Before the worker imports the app, so the model-load lines reach the error log.
    import logging

    # Uvicorn's own access line would duplicate the app's JSON one (uvicorn logs access
    # lines whenever "uvicorn.access" has handlers).
    logging.getLogger("uvicorn.access").handlers = []
    access = logging.getLogger("palpite.access")
    access.handlers = list(worker.log.access_log.handlers)
    access.propagate = False
    access.setLevel(logging.INFO if access.handlers else logging.CRITICAL + 1)
    app_log = logging.getLogger("palpite")
    app_log.handlers = list(worker.log.error_log.handlers)
    app_log.propagate = False
    # The logging HOWTO's "Optimization": no line here shows a thread, process name,
    # asyncio task or source line, and gathering them on every record costs more than
    # writing the access line. (The error log shows the pid, which stays.)
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging.logAsyncioTasks = False
    logging._srcfile = None


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    # Drops the dead worker's live gauges (model version); its counters stay summed.
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    temp = os.environ.get(_TEMP_MARK)
    if temp and temp == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(temp, ignore_errors=True)
