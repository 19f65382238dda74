"""What the release tests share: the environment's hosts and bucket, running a release
playbook with its step logs, bundles made for the tests, load through the front door while a
playbook runs, and the assertions on what the load saw.

Every release writes the hosts' step timelines (release_events_dir) and the load client
every request to .cache/e2e/release/<name>/; the numbers in docs/benchmarks.md come from
there.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import itertools
import json
import math
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from ml.bundle import write_bundle
from ml.publish import publish_bundle
from ml.signing import load_signer
from tests.e2e.conftest import (
    FAULT_COMMENT,
    FRONT_DOOR,
    REPO,
    AppHost,
    front_door_tls,
    inventory_app_hosts,
    run_playbook,
)
from tests.e2e.loadclient import LoadClient, Report, Request, measure_max

# The local environment's addresses (inventory/local: the same environment variables).
ENVIRONMENT = os.environ.get("PALPITE_ENVIRONMENT") or "local"
MOTO = f"http://10.231.0.1:{os.environ.get('PALPITE_LOCAL_MOTO_PORT') or 4566}"
OUT = REPO / ".cache" / "e2e" / "release"
TESTBED = REPO / "tests" / "testbed" / "testbed"
# The app hosts' nginx limits each client to 50 predictions/s (burst 100); during a release
# one host takes all the traffic, so the load keeps its predictions under this rate and
# fills the rest of its fixed rate with GETs that need the model (card, page, readiness).
PREDICTIONS_PER_SECOND_MAX = 40.0
ENV_FILE = "/etc/palpite/palpite.env"  # model_api_env_file
# The test bundles' input contracts differ from production's on purpose (another league's
# clubs, or a vector model replacing a record one): the contract check would refuse them.
BREAKING_OK = ("-e", "release_allow_breaking=true")
# The bake's window for releases whose test is about something else (faults, the lock):
# the bake still runs and still needs release_bake_min_requests on the canary, over a
# shorter window than the local default (20 s); test_release.py's release under load and
# test_release_bake.py keep the default.
SHORT_BAKE = ("-e", "release_bake_seconds=8")
# No bake, for a release whose test is about what happens after the canary (all or none):
# the way back from a baked canary is the same flow, and the bake has tests of its own.
NO_BAKE = ("-e", "release_bake_seconds=0")
# The guardrail and lock scenarios (all or none, one host at a time, one run at a time and
# resuming) are about what the fleet does, not how much it carries: their client sends a
# fixed, paced 40 requests/s (the lock scenarios' since session 24; the rate the
# release was first tried at), so the playbooks do not share the two cores with a load at
# half the front door's maximum. The zero-downtime proofs at that maximum stay in
# test_release.py (release, rollback and app release under load), through the same drain,
# switch and registration.
PACED_RATE = 40.0
NO_RELOAD_DROPIN = "/etc/systemd/system/palpite.service.d/zz-release-test-no-reload.conf"
# The checkout's signing key (the artifact role's artifact_signing_key default): site.yml's
# configure made it and installed its public key on the hosts, which trust nothing else.
SIGNING_KEY = REPO / ".signing" / "signing.key"


# ------------------------------------------------------------------------------ helpers


@dataclass
class Env:
    hosts: list[AppHost]  # in the release's order: hosts[0] is the canary
    bucket: str
    s3: Any

    def production(self) -> dict[str, Any]:
        return self.pointer("models/production.json")

    def latest_app(self) -> dict[str, Any]:
        return self.pointer("releases/app/latest.json")

    def pointer(self, key: str) -> dict[str, Any]:
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def publish(self, bundle: Path, signing_key: Path | None = SIGNING_KEY) -> str:
        """Publish a test bundle as `make release` does: signed with the checkout's key,
        which the hosts trust (or `signing_key`); None uploads it unsigned, straight to the
        bucket with valid checksums, as a bucket writer without the key could."""
        signer = load_signer(signing_key) if signing_key is not None else None
        published = publish_bundle(
            bundle, self.bucket, s3=self.s3, allow_unevaluated=True, signer=signer
        )
        return published.version

    def upload_unsigned_app_release(self, name: str) -> str:
        """The running app release's tarball uploaded straight to the bucket as release
        `name`, with a matching `.sha256` and no signature (valid checksums, no valid
        signature), as a bucket writer without the key could. Returns the tarball's key."""
        body = self.s3.get_object(Bucket=self.bucket, Key=self.latest_app()["key"])["Body"].read()
        file_name = f"palpite-app-{name}.tar.gz"
        key = f"releases/app/{name}/{file_name}"
        manifest = f"{hashlib.sha256(body).hexdigest()}  {file_name}\n"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        self.s3.put_object(Bucket=self.bucket, Key=f"{key}.sha256", Body=manifest.encode())
        return key

    def remove(self, prefix: str) -> None:
        """Delete every object under `prefix` (what a test uploaded to be refused)."""
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        for item in listed.get("Contents", []):
            self.s3.delete_object(Bucket=self.bucket, Key=item["Key"])


def trusted_key_id() -> str:
    """The key id the hosts and the controller trust: the checkout's signing key's."""
    return load_signer(SIGNING_KEY).public_key.key_id


def on_host(host: AppHost, command: str) -> str:
    key = subprocess.run([str(TESTBED), "key"], capture_output=True, text=True, check=True)
    result = subprocess.run(
        [
            "ssh",
            "-i",
            key.stdout.strip(),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            f"root@{host.address}",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"{host.address}: {command}: {result.stderr}"
    return result.stdout


def serving(host: AppHost) -> str | None:
    """The model version a host's nginx + gunicorn answer with (asked directly)."""
    response = httpx.get(f"http://{host.address}/health/ready", timeout=10, trust_env=False)
    return response.json().get("model_version") if response.status_code == 200 else None


def current_link(host: AppHost) -> str:
    return Path(on_host(host, "readlink /srv/palpite/models/current").strip()).name


def app_release(host: AppHost) -> str:
    return Path(on_host(host, "readlink /srv/palpite/app/current").strip()).name


def model_releases(host: AppHost) -> set[str]:
    return set(on_host(host, "ls /srv/palpite/models/releases").split())


@dataclass
class Run:
    name: str
    result: subprocess.CompletedProcess[str]
    seconds: float
    events: dict[str, list[dict[str, Any]]]

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr

    def event_time(self, host: AppHost, event: str) -> float:
        [entry] = [e for e in self.events.get(host.name, []) if e["event"] == event]
        return float(entry["time"])


def release(name: str, *extra: str, playbook: str = "playbooks/release.yml") -> Run:
    events_dir = OUT / name / "events"
    shutil.rmtree(events_dir, ignore_errors=True)
    args = ["-e", f"release_events_dir={events_dir}", *extra]
    start = time.monotonic()
    result = run_playbook(playbook, *args, log=f"release-{name}.log")
    seconds = time.monotonic() - start
    events = {}
    if events_dir.is_dir():
        for path in events_dir.glob("*.jsonl"):
            events[path.stem] = [json.loads(line) for line in path.read_text().splitlines()]
    return Run(name, result, seconds, events)


def assert_refused(run: Run, env: Env, production: str, *needles: str) -> None:
    """The run failed, said why, and nothing changed: pointer, links, served versions."""
    assert run.result.returncode != 0, f"{run.name}: the release should have been refused"
    output = " ".join(run.output.split())  # messages can be folded over lines
    for needle in needles:
        assert needle in output, f"{run.name}: {needle!r} not in the output"
    assert env.production()["version"] == production
    for host in env.hosts:
        assert serving(host) == production, f"{host.name} does not serve {production}"
        assert current_link(host) == production


def vector_fields(metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    names = ["x0", "x1", "x2", "x3"]
    return {
        "name": "release-test-vector",
        "adapter": {"kind": "vector", "feature_code_version": None},
        "input_schema": {"kind": "vector", "name": "features", "length": 4, "feature_names": names},
        "feature_names": names,
        "classes": ["high", "low", "mid"],
        "class_labels": {"high": "High", "low": "Low", "mid": "Mid"},
        "metrics": metrics or {"model": {"log_loss": 0.5}, "base_rate": {"log_loss": 1.0}},
    }


def vector_bundle(out: Path, *, seed: int, nan_on_example: bool = False, **card: Any) -> Path:
    """A small bundle on a 4-number vector, unique by seed. With nan_on_example it loads and
    predicts for inputs <= 0, but log(-x) is NaN for the schema's example (1, 2, 3, 4)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 4))
    y = np.select([x[:, 0] > 0.5, x[:, 0] < -0.5], ["high", "low"], "mid")
    model: Any = LogisticRegression(C=1.0 + seed)
    if nan_on_example:
        model = make_pipeline(
            FunctionTransformer(np.negative), FunctionTransformer(np.log), LogisticRegression()
        )
        x = -np.abs(x) - 0.1
    model.fit(x, y)
    return write_bundle(out, model, vector_fields(**card))


def league_csv(path: Path, seed: int) -> Path:
    python = str(REPO / ".venv" / "bin" / "python")
    subprocess.run(
        [python, "-m", "ml", "generate", "--out", str(path), "--seed", str(seed)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return path


def last_season_teams(path: Path) -> set[str]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    years = [dt.datetime.strptime(r["data"], "%d/%m/%Y").year for r in rows]
    last = max(years)
    return {r["mandante"] for r, y in zip(rows, years, strict=True) if y == last}


def load_requests(home: str, away: str, rate: float) -> list[Request]:
    """One prediction, then at least three model-backed GETs, more when needed to keep the
    predictions under the app hosts' per-client limit at `rate` requests/s."""
    gets = [Request("GET", "/model"), Request("GET", "/"), Request("GET", "/health/ready")]
    per_prediction = max(3, math.ceil(rate / PREDICTIONS_PER_SECOND_MAX) - 1)
    predict = Request("POST", "/predict", {"home_team": home, "away_team": away})
    return [predict] + [gets[i % len(gets)] for i in range(per_prediction)]


_MAXIMUM: dict[str, Any] = {}


def front_door_max(teams: tuple[str, str]) -> dict[str, Any]:
    """The front door's closed-loop maximum for the load's mix, measured once per session
    (the hosts and the mix's shape do not change between releases; 5 s each time adds up)."""
    if not _MAXIMUM:
        mix = load_requests(*teams, rate=0)
        _MAXIMUM.update(
            measure_max(FRONT_DOOR, mix, seconds=5, concurrency=16, tls=front_door_tls())
        )
    return dict(_MAXIMUM)


def under_load(
    name: str,
    teams: tuple[str, str],
    action: Any,
    *,
    mix: Any = None,
    rate: float | None = None,
) -> tuple[Run, Report, dict[str, Any]]:
    """Run `action` while sending `rate` requests/s (default: half of the front door's
    maximum); log both. `mix(rate)` gives the requests to cycle through (default:
    load_requests for `teams`)."""
    maximum = front_door_max(teams)
    if rate is None:
        rate = max(5.0, maximum["ok_per_second"] / 2)
    requests = mix(rate) if mix else load_requests(*teams, rate=rate)
    load = LoadClient(
        FRONT_DOOR,
        rate,
        requests,
        min_seconds=30,
        max_seconds=900,
        concurrency=200,
        tls=front_door_tls(),
    ).start()
    try:
        run = action()
    finally:
        load.stop()
        report = load.join()
    OUT.mkdir(parents=True, exist_ok=True)
    report.write_jsonl(OUT / name / "requests.jsonl")
    summary = {
        "max": maximum,
        "mix": [f"{r.method} {r.path}" for r in requests],
        "load": report.summary(),
        "playbook_seconds": round(run.seconds, 1),
        "hosts": {
            h: {e["event"]: round(float(e["time"]) - report.started, 1) for e in evs}
            for h, evs in run.events.items()
        },
    }
    (OUT / name / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\n{name}: {json.dumps(summary)}")
    return run, report, summary


def assert_no_failed_request(run: Run, report: Report, env: Env) -> None:
    """The playbook passed, the load ran as planned without one failure, and each host
    was out of the front door's rotation from its drain to its health gate."""
    assert run.result.returncode == 0, run.output[-4000:]
    summary = report.summary()
    assert report.duration >= 30, summary
    assert len(report.sent) >= 0.9 * report.planned, summary
    assert report.errors == [], report.errors[:5]
    assert [s for s in report.sent if s.status is None or s.status >= 500] == []
    assert report.failures == [], [(s.status, s.path) for s in report.failures[:10]]
    for host in env.hosts:
        drained = run.event_time(host, "drained")
        healthy = run.event_time(host, "healthy")
        registered = run.event_time(host, "registered")
        mine = [s for s in report.sent if s.upstream == host.upstream]
        assert [s for s in mine if drained < s.start < healthy] == []
        assert [s for s in mine if s.start > registered], (
            f"{host.name} served nothing after it was registered again"
        )


def assert_zero_downtime(run: Run, report: Report, env: Env, old: str, new: str) -> None:
    assert_no_failed_request(run, report, env)
    for host in env.hosts:
        drained = run.event_time(host, "drained")
        registered = run.event_time(host, "registered")
        mine = [s for s in report.sent if s.upstream == host.upstream]
        # Nothing from the old model after its switch; the new one once it is back.
        assert [s for s in mine if s.start > drained and s.version != new] == []
        assert {s.version for s in mine if s.start > registered} == {new}
        assert {s.version for s in mine if s.end < drained} <= {old}
        assert serving(host) == new
        assert current_link(host) == new
    assert env.production()["version"] == new


# ----------------------------------------------------------------------------- fixtures


def moto_client(service: str) -> Any:
    """A client of the local environment's moto (the emulated AWS)."""
    return boto3.client(
        service,
        endpoint_url=MOTO,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def open_env() -> Env:
    """The environment's hosts in release order, its bucket and an S3 client of it."""
    s3 = moto_client("s3")
    [bucket] = [
        b["Name"]
        for b in s3.list_buckets()["Buckets"]
        if b["Name"].startswith(f"palpite-{ENVIRONMENT}-artifacts-")
    ]
    return Env(inventory_app_hosts(), bucket, s3)


@contextlib.contextmanager
def no_reload_on(canary: AppHost) -> Iterator[None]:
    """The host's `systemctl reload` does nothing: its gunicorn never picks up a model."""
    on_host(
        canary,
        f"mkdir -p {Path(NO_RELOAD_DROPIN).parent} && printf '[Service]\\nExecReload=\\n"
        f"ExecReload=/bin/true\\n' > {NO_RELOAD_DROPIN} && systemctl daemon-reload",
    )
    try:
        yield
    finally:
        on_host(canary, f"rm -f {NO_RELOAD_DROPIN} && systemctl daemon-reload")


# --------------------------------------------------------------------- faults and the fleet


@contextlib.contextmanager
def bucket_cut_off(host: AppHost) -> Iterator[None]:
    """The host's connections to the bucket (moto on the controller) are refused: a fault
    made in the environment, on the controller's side of the testbed bridge."""
    rule = _tcp_reset_rule("INPUT", "-s", host.address, MOTO.rsplit(":", 1)[1])
    _iptables("-I", rule)
    try:
        yield
    finally:
        _iptables("-D", rule)


def _tcp_reset_rule(chain: str, direction: str, address: str, port: str) -> list[str]:
    """An iptables rule answering TCP to `port` from (-s) or to (-d) `address` with a reset,
    tagged so that conftest's clean-up finds it."""
    rule = [chain, direction, address, "-p", "tcp", "--dport", port]
    return [
        *rule,
        "-m",
        "comment",
        "--comment",
        FAULT_COMMENT,
        "-j",
        "REJECT",
        "--reject-with",
        "tcp-reset",
    ]


def _iptables(action: str, rule: list[str]) -> None:
    subprocess.run(["iptables", action, *rule], check=True, timeout=30)


@contextlib.contextmanager
def ssh_cut_off_once_registered(env: Env, host: AppHost, moved: AppHost) -> Iterator[list[float]]:
    """The controller's SSH connections to `host` are cut (reset, the open control master
    with them) as soon as the running release's journal shows `moved` registered again on
    its new version: a host lost after the canary switched, made in the environment. Yields
    a list that gets the time of the cut."""
    before = _journal(env).get("run_id")
    rule = _tcp_reset_rule("OUTPUT", "-d", host.address, "22")
    cut: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.3):
            journal = _journal(env)
            this_run = journal.get("run_id") not in (None, before) and not journal["finished"]
            if this_run and journal["hosts"].get(moved.name) == "registered":
                _iptables("-I", rule)
                cut.append(time.time())
                return

    watcher = threading.Thread(target=watch, name="ssh-cut", daemon=True)
    watcher.start()
    try:
        yield cut
    finally:
        stop.set()
        watcher.join(timeout=30)
        if cut:
            _iptables("-D", rule)


def _journal(env: Env) -> dict[str, Any]:
    """The fleet journal (ml/fleet_lock.py), {} when there is none."""
    try:
        return env.pointer("locks/journal.json")
    except env.s3.exceptions.NoSuchKey:
        return {}


def card_teams(env: Env, version: str) -> set[str]:
    card = env.pointer(f"models/{version}/model_card.json")
    return set(card["input_schema"]["fields"][0]["enum"])


def target_group() -> tuple[Any, str]:
    elb = moto_client("elbv2")
    [tg] = elb.describe_target_groups(Names=[f"palpite-{ENVIRONMENT}-app"])["TargetGroups"]
    return elb, tg["TargetGroupArn"]


def registered_targets() -> set[str]:
    elb, arn = target_group()
    health = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    return {t["Target"]["Id"] for t in health}


def assert_one_host_at_a_time(run: Run, env: Env) -> None:
    """Each host was out of the front door from its drain to its registration, never two
    at once."""
    windows = sorted(
        (run.event_time(h, "drained"), run.event_time(h, "registered")) for h in env.hosts
    )
    for (_, first_back), (second_out, _) in itertools.pairwise(windows):
        assert first_back <= second_out, windows
