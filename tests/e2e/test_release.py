"""Releasing a model and rolling back, on the local environment's two app hosts.

Reuses the session's environment (conftest.py's `local_env`: site.yml from nothing). In
file order, each test leaving production where the next expects it:
  1. bad bundles are refused before `current` moves; production and every host stay put
     (checksum, library versions, smoke prediction; the quality gate before any host);
  2. a canary that fails its health check rolls itself back; the second host is untouched;
  3. a release (train + gate + publish + rollout) under a fixed-rate load through the front
     door: no failed request, every host ends on the new model, none answers with the old
     one after its switch;
  4. rollback under the same load: no failed request, every host back on the old model;
  5. an app release (new code, same model) under the same load: no failed request;
  6. all or none: the second host fails after the canary switched (its downloads from the
     bucket cut off on the controller's side): the canary goes back, both end on the old
     model, registered, production unchanged, no failed request under load;
  7. minimum healthy: with the second host out of the target group the release refuses
     before draining the canary; with release_min_healthy=0 it goes ahead;
  8. a change to the service's environment applied with site.yml under load: the hosts
     restart one at a time behind a drained target, no failed request;
  9. `make patch` with the reboot forced, under load: the same.
Every release writes the hosts' step timelines (release_events_dir) and the load client
every request to .cache/e2e/release/; the numbers in docs/benchmarks.md come from there.

PALPITE_E2E_EXISTING=1 runs these against an environment that is up already (`make demo`)
instead of the session fixture (which tears down and rebuilds from nothing).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from ml.bundle import write_bundle
from ml.publish import publish_bundle
from tests.e2e.conftest import FRONT_DOOR, REPO, AppHost, inventory_app_hosts, run_playbook
from tests.e2e.loadclient import LoadClient, Report, Request, measure_max

pytestmark = pytest.mark.testbed

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
NO_RELOAD_DROPIN = "/etc/systemd/system/palpite.service.d/zz-release-test-no-reload.conf"


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

    def publish(self, bundle: Path) -> str:
        return publish_bundle(bundle, self.bucket, s3=self.s3, allow_unevaluated=True).version


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


def under_load(
    name: str, teams: tuple[str, str], action: Any
) -> tuple[Run, Report, dict[str, Any]]:
    """Measure the maximum, then run `action` while sending half of it; log both."""
    maximum = measure_max(FRONT_DOOR, load_requests(*teams, rate=0), seconds=5, concurrency=16)
    rate = max(5.0, maximum["ok_per_second"] / 2)
    requests = load_requests(*teams, rate=rate)
    load = LoadClient(
        FRONT_DOOR, rate, requests, min_seconds=30, max_seconds=900, concurrency=200
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


@pytest.fixture(scope="module")
def env(request: pytest.FixtureRequest) -> Env:
    if os.environ.get("PALPITE_E2E_EXISTING") != "1":
        request.getfixturevalue("local_env")
    s3 = moto_client("s3")
    [bucket] = [
        b["Name"]
        for b in s3.list_buckets()["Buckets"]
        if b["Name"].startswith(f"palpite-{ENVIRONMENT}-artifacts-")
    ]
    return Env(inventory_app_hosts(), bucket, s3)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("release")


@pytest.fixture
def no_reload_on_canary(env: Env) -> Iterator[AppHost]:
    """The canary's `systemctl reload` does nothing: its gunicorn never picks up a model."""
    canary = env.hosts[0]
    on_host(
        canary,
        f"mkdir -p {Path(NO_RELOAD_DROPIN).parent} && printf '[Service]\\nExecReload=\\n"
        f"ExecReload=/bin/true\\n' > {NO_RELOAD_DROPIN} && systemctl daemon-reload",
    )
    try:
        yield canary
    finally:
        on_host(canary, f"rm -f {NO_RELOAD_DROPIN} && systemctl daemon-reload")


# -------------------------------------------------------------------------------- tests


def test_bad_bundles_are_refused_and_production_stays(env: Env, workdir: Path) -> None:
    production = env.production()["version"]
    canary, second = env.hosts[0], env.hosts[1]
    second_releases = model_releases(second)

    # 1. Checksum: the archive in the bucket is damaged after publishing.
    damaged = env.publish(vector_bundle(workdir / "damaged", seed=101))
    key = f"models/{damaged}/{damaged}.tar.gz"
    body = bytearray(env.s3.get_object(Bucket=env.bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0xFF
    env.s3.put_object(Bucket=env.bucket, Key=key, Body=bytes(body))
    run = release("bad-checksum", "-e", f"release_version={damaged}", *BREAKING_OK)
    assert_refused(run, env, production, f"stopped on {canary.name}", "did not match")
    assert damaged not in model_releases(canary)

    # 2. Library versions: the card says the model was built with another scikit-learn.
    bundle = vector_bundle(workdir / "libs", seed=102)
    card = json.loads((bundle / "model_card.json").read_text())
    card["libraries"]["scikit-learn"] = "0.24.2"
    (bundle / "model_card.json").write_text(json.dumps(card, indent=2))
    run = release("bad-libraries", "-e", f"release_bundle={bundle}", *BREAKING_OK)
    assert_refused(run, env, production, f"stopped on {canary.name}", "scikit-learn mismatch")
    assert card["version"] not in model_releases(canary)

    # 3. Smoke prediction: it loads, but its answer to the schema's example is not usable.
    bundle = vector_bundle(workdir / "smoke", seed=103, nan_on_example=True)
    run = release("bad-smoke", "-e", f"release_bundle={bundle}", *BREAKING_OK)
    assert_refused(run, env, production, f"stopped on {canary.name}", "(unscorable_input)")

    # 4. Quality gate: refused at publishing, before any host is touched.
    bundle = vector_bundle(
        workdir / "gate",
        seed=104,
        metrics={"model": {"log_loss": 1.2}, "base_rate": {"log_loss": 1.0}},
    )
    run = release("bad-gate", "-e", f"release_bundle={bundle}")
    assert_refused(run, env, production, "before any host was touched")
    assert run.events == {}
    version = json.loads((bundle / "model_card.json").read_text())["version"]
    assert env.s3.list_objects_v2(Bucket=env.bucket, Prefix=f"models/{version}/")["KeyCount"] == 0

    # Only ever the canary: drained, refused, registered again; the second host was never
    # reached (no step of its own) and nothing was put back (nothing else had moved).
    for name in ("bad-checksum", "bad-libraries", "bad-smoke"):
        log = (REPO / ".cache" / "e2e" / f"release-{name}.log").read_text()
        assert f"{second.name}: not reached" in " ".join(log.split())
        assert "then back on" not in log
    assert model_releases(second) == second_releases


def test_canary_failing_its_health_check_rolls_back(
    env: Env, workdir: Path, no_reload_on_canary: AppHost
) -> None:
    production = env.production()["version"]
    canary, second = env.hosts[0], env.hosts[1]
    second_releases = model_releases(second)
    bundle = vector_bundle(workdir / "unhealthy", seed=105)
    run = release(
        "canary-unhealthy",
        "-e",
        f"release_bundle={bundle}",
        "-e",
        "release_health_timeout=10",
        *BREAKING_OK,
    )
    assert_refused(
        run, env, production, f"stopped on {canary.name}", "reports the new model", "is back on"
    )
    steps = [e["event"] for e in run.events[canary.name]]
    assert steps == ["start", "drained", "switched", "failed", "rolled_back"]
    assert second.name not in run.events
    assert model_releases(second) == second_releases


def test_release_under_load_fails_no_request(env: Env, workdir: Path) -> None:
    old = env.production()["version"]
    data = league_csv(workdir / "league-seed5.csv", seed=5)
    card = httpx.get(f"{FRONT_DOOR}/model", timeout=10, trust_env=False).json()
    teams = sorted(set(card["input_schema"]["fields"][0]["enum"]) & last_season_teams(data))
    assert len(teams) >= 2, "the two leagues share fewer than two clubs"

    # Trained on another league, the new model knows other clubs: refused before any host
    # changes, with the contract's changes listed ...
    refused = release(
        "release-contract", "-e", f"release_data={data}", "-e", f"release_bundle_dir={workdir}"
    )
    assert_refused(refused, env, old, "breaks clients of", "removed values home_team")
    assert refused.events == {}
    match = re.search(r"model (\S+) breaks clients of", refused.output)
    assert match, refused.output[-3000:]
    # ... and rolled out, published as it is, when the release says it may break them.
    run, report, _ = under_load(
        "release",
        (teams[0], teams[1]),
        lambda: release("release", "-e", f"release_version={match.group(1)}", *BREAKING_OK),
    )
    new = env.production()["version"]
    assert new != old
    assert_zero_downtime(run, report, env, old, new)
    assert env.production()["history"][0]["version"] == old


def test_rollback_under_load_fails_no_request(env: Env) -> None:
    pointer = env.production()
    new, old = pointer["version"], pointer["history"][0]["version"]
    card = httpx.get(f"{FRONT_DOOR}/model", timeout=10, trust_env=False).json()
    home, away = card["input_schema"]["fields"][0]["enum"][:2]

    run, report, _ = under_load(
        "rollback", (home, away), lambda: release("rollback", playbook="playbooks/rollback.yml")
    )
    assert_zero_downtime(run, report, env, new, old)
    assert env.production()["rolled_back_from"] == new


def test_app_release_under_load_fails_no_request(env: Env, workdir: Path) -> None:
    """New app code (this tree with a changed README: another build, same behaviour),
    rolled out under the same load: no failed request, every host on the new build and
    still serving the production model, the app pointer moved only at the end."""
    model = env.production()["version"]
    running = env.latest_app()["version"]
    source = workdir / "app-source"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    for name in ("pyproject.toml", "poetry.lock"):
        shutil.copy2(REPO / name, source / name)
    for name in ("app", "ml"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    readme = (REPO / "README.md").read_text()
    (source / "README.md").write_text(readme + f"\n<!-- app release test {time.time()} -->\n")
    card = httpx.get(f"{FRONT_DOOR}/model", timeout=10, trust_env=False).json()
    home, away = card["input_schema"]["fields"][0]["enum"][:2]

    run, report, _ = under_load(
        "release-app",
        (home, away),
        lambda: release(
            "release-app",
            "-e",
            f"model_api_build_source_dir={source}",
            playbook="playbooks/release_app.yml",
        ),
    )
    assert_no_failed_request(run, report, env)
    built = env.latest_app()["version"]
    assert built != running
    assert {s.version for s in report.sent} == {model}
    for host in env.hosts:
        assert app_release(host) == built
        assert serving(host) == model
        # The release it replaced (whose venv the new one was copied from) still works:
        # going back to it (a rollback, all or none) must find it whole.
        on_host(
            host,
            "cd /srv/palpite/app/previous && .venv/bin/python -c"
            " 'from importlib import metadata; assert metadata.version(\"palpite\")'",
        )


# ----------------------------------------------------------------- guardrails (all or none)


@contextlib.contextmanager
def bucket_cut_off(host: AppHost) -> Iterator[None]:
    """The host's connections to the bucket (moto on the controller) are refused: a fault
    made in the environment, on the controller's side of the testbed bridge."""
    rule = ["INPUT", "-s", host.address, "-p", "tcp", "--dport", MOTO.rsplit(":", 1)[1]]
    rule += ["-j", "REJECT", "--reject-with", "tcp-reset"]
    subprocess.run(["iptables", "-I", *rule], check=True, timeout=30)
    try:
        yield
    finally:
        subprocess.run(["iptables", "-D", *rule], check=True, timeout=30)


def card_teams(env: Env, version: str) -> set[str]:
    card = env.pointer(f"models/{version}/model_card.json")
    return set(card["input_schema"]["fields"][0]["enum"])


def test_a_failure_after_the_canary_switched_puts_every_host_back(env: Env) -> None:
    pointer = env.production()
    old, target = pointer["version"], pointer["rolled_back_from"]  # a football model, published
    canary, second = env.hosts[0], env.hosts[1]
    home, away = sorted(card_teams(env, old) & card_teams(env, target))[:2]
    # The hosts kept the target on disk from its earlier release: the second host must
    # download it again, and that download is what fails.
    on_host(second, f"rm -rf /srv/palpite/models/releases/{target}")

    with bucket_cut_off(second):
        run, report, _ = under_load(
            "release-fault",
            (home, away),
            lambda: release("release-fault", "-e", f"release_version={target}", *BREAKING_OK),
        )
    assert run.result.returncode != 0
    output = " ".join(run.output.split())
    for needle in (f"stopped on {second.name}", "(all or none)", "models/production.json"):
        assert needle in output, needle
    assert f"{canary.name}: moved {old} -> {target}" in output
    # The canary moved and came back through the same flow; the second never switched.
    steps = [e["event"] for e in run.events[canary.name]]
    forward = ["start", "drained", "switched", "healthy", "registered"]
    assert steps == forward + forward, steps
    assert [e["version"] for e in run.events[canary.name]] == [target] * 5 + [old] * 5
    assert [e["event"] for e in run.events[second.name]] == [
        "start",
        "drained",
        "failed",
        "rolled_back",
    ]
    assert env.production() == pointer
    for host in env.hosts:
        assert serving(host) == old
        assert current_link(host) == old
    # Zero failed requests across the whole run, through the front door.
    summary = report.summary()
    assert report.duration >= 30, summary
    assert report.errors == [], report.errors[:5]
    assert report.failures == [], [(s.status, s.path) for s in report.failures[:10]]
    assert registered_targets() == {h.name for h in env.hosts}


def target_group() -> tuple[Any, str]:
    elb = moto_client("elbv2")
    [tg] = elb.describe_target_groups(Names=[f"palpite-{ENVIRONMENT}-app"])["TargetGroups"]
    return elb, tg["TargetGroupArn"]


def registered_targets() -> set[str]:
    elb, arn = target_group()
    health = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    return {t["Target"]["Id"] for t in health}


def test_too_few_healthy_hosts_refuse_and_min_healthy_zero_goes_ahead(env: Env) -> None:
    pointer = env.production()
    old, target = pointer["version"], pointer["rolled_back_from"]
    canary, second = env.hosts[0], env.hosts[1]
    elb, arn = target_group()
    elb.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": second.name}])

    run = release("min-healthy", "-e", f"release_version={target}", *BREAKING_OK)
    assert_refused(run, env, old, f"refused before draining {canary.name}", "release_min_healthy")
    assert f"{second.name}: not registered, /health/ready 200" in " ".join(run.output.split())
    assert run.events == {}  # nothing was drained

    run = release(
        "min-healthy-zero", "-e", f"release_version={target}", "-e", "release_min_healthy=0",
        *BREAKING_OK,
    )  # fmt: skip
    assert run.result.returncode == 0, run.output[-4000:]
    assert env.production()["version"] == target
    for host in env.hosts:
        assert serving(host) == target
    assert registered_targets() == {h.name for h in env.hosts}


# ------------------------------------------- guardrails (fleet changes one host at a time)


def assert_one_host_at_a_time(run: Run, env: Env) -> None:
    """Each host was out of the front door from its drain to its registration, never two
    at once."""
    windows = sorted(
        (run.event_time(h, "drained"), run.event_time(h, "registered")) for h in env.hosts
    )
    for (_, first_back), (second_out, _) in itertools.pairwise(windows):
        assert first_back <= second_out, windows


def test_a_configuration_change_restarts_hosts_one_at_a_time_under_load(env: Env) -> None:
    card = httpx.get(f"{FRONT_DOOR}/model", timeout=10, trust_env=False).json()
    home, away = card["input_schema"]["fields"][0]["enum"][:2]
    marker = '{"model_api_extra_environment": {"PALPITE_RELEASE_TEST": "1"}}'
    run, report, _ = under_load(
        "configure-env",
        (home, away),
        lambda: release("configure-env", "-e", marker, playbook="site.yml"),
    )
    assert_no_failed_request(run, report, env)
    assert_one_host_at_a_time(run, env)
    for host in env.hosts:
        assert [e["event"] for e in run.events[host.name]] == [
            "start", "drained", "switched", "healthy", "registered"
        ]  # fmt: skip
        assert "PALPITE_RELEASE_TEST=1" in on_host(host, f"cat {ENV_FILE}")
    # Back as it was (site.yml's second run in test_site.py expects no change), the same way.
    restore = release("configure-env-restore", "--tags", "app", playbook="playbooks/configure.yml")
    assert restore.result.returncode == 0, restore.output[-4000:]
    for host in env.hosts:
        assert "PALPITE_RELEASE_TEST" not in on_host(host, f"cat {ENV_FILE}")
        assert [e["event"] for e in restore.events[host.name]][-1] == "registered"


def test_patch_with_a_forced_reboot_fails_no_request(env: Env) -> None:
    card = httpx.get(f"{FRONT_DOOR}/model", timeout=10, trust_env=False).json()
    home, away = card["input_schema"]["fields"][0]["enum"][:2]
    model = env.production()["version"]
    pid1_started = {h.name: on_host(h, "cut -d' ' -f22 /proc/1/stat").strip() for h in env.hosts}
    run, report, _ = under_load(
        "patch",
        (home, away),
        lambda: release("patch", "-e", "patch_reboot=always", playbook="playbooks/patch.yml"),
    )
    assert_no_failed_request(run, report, env)
    assert_one_host_at_a_time(run, env)
    for host in env.hosts:
        assert on_host(host, "cut -d' ' -f22 /proc/1/stat").strip() != pid1_started[host.name], (
            f"{host.name} did not reboot"
        )
        assert serving(host) == model
