"""Real gunicorn servers on loopback, serving bundles from a `current` symlink.

The layout is the deploy's: `<models>/releases/<version>/` and `<models>/current ->
releases/<version>`; a swap moves the symlink atomically and sends SIGHUP to the master.
"""

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from ml.package import package_estimator
from tests.local_server import free_port

REPO = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"
# Worker boot imports scikit-learn; on a busy 2-core machine that has taken 20 s.
BOOT_TIMEOUT = 120.0


def request(
    port: int, method: str, path: str, body: dict | None = None, timeout: float = 30
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"content-type": "application/json"} if body is not None else {}
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def move_current(models: Path, version: str) -> None:
    """Point `current` at a release atomically, as the deploy does."""
    tmp = models / ".current.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(Path("releases") / version)
    tmp.replace(models / "current")


@dataclass
class Gunicorn:
    proc: subprocess.Popen
    port: int
    models: Path
    log: Path
    access_log: Path
    workers: int
    old_gone: float = 0.0  # when the workers of the previous model had all exited

    def worker_pids(self) -> set[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return {int(p) for p in children.read_text().split()}
        except FileNotFoundError:
            return set()

    def booted(self) -> int:
        return self.log.read_text().count("Application startup complete")

    def wait_booted(self, count: int, timeout: float = BOOT_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while self.booted() < count:
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"workers not up:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def hup(self) -> None:
        self.proc.send_signal(signal.SIGHUP)

    def wait_gone(self, pids: set[int], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.worker_pids() & pids:
            assert time.monotonic() < deadline, f"old workers still running: {pids}"
            time.sleep(0.1)

    def access_lines(self) -> list[dict]:
        # A worker writes a line at most settings.record_flush_seconds after it.
        time.sleep(0.2)
        return [json.loads(line) for line in self.access_log.read_text().splitlines() if line]


@pytest.fixture(scope="session")
def releases(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two versions of a plain numeric classifier, made with `ml package`."""
    work = tmp_path_factory.mktemp("releases")
    (work / "schema.json").write_text(
        json.dumps({"kind": "vector", "name": "features", "length": 4})
    )
    out = []
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(200, 4))
        y = np.where(x[:, seed] > 0, "yes", "no")
        joblib.dump(LogisticRegression().fit(x, y), work / f"clf{seed}.joblib")
        out.append(
            package_estimator(work / f"clf{seed}.joblib", work / "schema.json", work / "out")
        )
    assert out[0].name != out[1].name
    return out


StartGunicorn = Callable[..., Gunicorn]


def launch(root: Path, bundles: list[Path], workers: int, **env: str) -> Gunicorn:
    """gunicorn serving `bundles[0]` from `root/models/current`; not yet waited for."""
    models = root / "models"
    for bundle in bundles:
        shutil.copytree(bundle, models / "releases" / bundle.name)
    move_current(models, bundles[0].name)
    port = free_port()
    log, access = root / "gunicorn.log", root / "access.log"
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PALPITE_", "PROMETHEUS_"))},
        "PALPITE_MODEL_DIR": str(models / "current"),
        "PALPITE_BIND": f"127.0.0.1:{port}",
        "PALPITE_WORKERS": str(workers),
        "PALPITE_METRICS_DIR": str(root / "metrics"),
        "PALPITE_ACCESS_LOG": str(access),
        **env,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(GUNICORN), "-c", "app/gunicorn.conf.py"],
            cwd=REPO,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Gunicorn(proc, port, models, log, access, workers)


def stop(servers: list[Gunicorn]) -> None:
    for server in servers:
        if server.proc.poll() is None:
            server.proc.terminate()
            try:
                server.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait()


@pytest.fixture
def start_gunicorn(tmp_path: Path, releases: list[Path]) -> Iterator[StartGunicorn]:
    servers: list[Gunicorn] = []

    def start(workers: int = 2, **env: str) -> Gunicorn:
        server = launch(tmp_path, releases, workers, **env)
        servers.append(server)
        server.wait_booted(workers)
        return server

    yield start
    stop(servers)


ServeBundles = Callable[..., list[Gunicorn]]


@pytest.fixture(scope="session")
def serve_bundles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeBundles]:
    """One-worker servers shared by the session, one per bundle, booted side by side
    (a boot is the slow part); a bundle asked for again gets the same server."""
    servers: dict[Path, Gunicorn] = {}

    def serve(*bundles: Path) -> list[Gunicorn]:
        for bundle in bundles:
            if bundle not in servers:
                servers[bundle] = launch(tmp_path_factory.mktemp("serve"), [bundle], 1)
        for bundle in bundles:
            servers[bundle].wait_booted(1)
        return [servers[b] for b in bundles]

    yield serve
    stop(list(servers.values()))


@pytest.fixture(scope="session")
def football() -> Path:
    from football import football_bundle

    return football_bundle()
