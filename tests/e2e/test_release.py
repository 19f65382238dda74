"""Releasing a model or new app code, and rolling back, on the local environment's two app
hosts (the session's environment, conftest.py: site.yml from nothing). In file order, each
test leaving production where the next expects it:
  1. bad bundles are refused before `current` moves; production and every host stay put
     (checksum, smoke prediction; the quality gate, and a bundle uploaded unsigned or
     signed by a key the hosts do not trust, before any host); the checksum case runs
     with the second host out of the target group, refused first by the minimum healthy
     check, then let through to the canary with release_min_healthy=0; an app release
     uploaded unsigned is refused before any host too;
  2. a canary that fails its health check rolls itself back; the second host is untouched;
  3. a release whose input contract breaks clients is refused before any host changes;
     then (train + gate + publish + rollout, allowed to break) under a fixed-rate load
     through the front door: no failed request, every host ends on the new model, none
     answers with the old one after its switch;
  4. rollback under the same load: no failed request, every host back on the old model;
  5. an app release (new code, same model) under the same load: no failed request;
  6. all or none for app code: going back to the earlier build fails on the second host
     after the canary switched; the canary goes back, no failed request under load.
test_release_guardrails.py goes on from there (model faults, minimum healthy, the fleet
changes of configure and patch).
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from ml.signing import generate_key
from tests.e2e.conftest import REPO, front_door_request
from tests.e2e.releasing import (
    BREAKING_OK,
    OUT,
    PACED_RATE,
    Env,
    app_release,
    assert_no_failed_request,
    assert_refused,
    assert_zero_downtime,
    bucket_cut_off,
    last_season_teams,
    league_csv,
    model_releases,
    no_reload_on,
    on_host,
    registered_targets,
    release,
    serving,
    target_group,
    trusted_key_id,
    under_load,
    vector_bundle,
)

pytestmark = pytest.mark.testbed


def test_bad_bundles_are_refused_and_production_stays(env: Env, workdir: Path) -> None:
    production = env.production()["version"]
    canary, second = env.hosts[0], env.hosts[1]
    second_releases = model_releases(second)

    # 1. Checksum: the archive in the bucket is damaged after publishing (its signed .sha256
    # still verifies, on the controller and on the host; the host's download checks the
    # archive against that signed sha256). Released with the second host out of the target
    # group (release guardrails 1/3, minimum healthy): first refused before the canary is
    # drained, which would leave no host serving; then, with release_min_healthy=0, let
    # through to the canary, where the download is refused while the canary still serves
    # (a host downloads and checks a model before it leaves rotation).
    damaged = env.publish(vector_bundle(workdir / "damaged", seed=101))
    key = f"models/{damaged}/{damaged}.tar.gz"
    body = bytearray(env.s3.get_object(Bucket=env.bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0xFF
    env.s3.put_object(Bucket=env.bucket, Key=key, Body=bytes(body))
    elb, arn = target_group()
    elb.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": second.name}])
    try:
        run = release("min-healthy", "-e", f"release_version={damaged}", *BREAKING_OK)
        assert_refused(
            run, env, production, f"refused before draining {canary.name}", "release_min_healthy"
        )
        assert f"{second.name}: not registered, /health/ready 200" in " ".join(run.output.split())
        assert run.events == {}  # nothing was drained

        run = release(
            "bad-checksum", "-e", f"release_version={damaged}", "-e", "release_min_healthy=0",
            *BREAKING_OK,
        )  # fmt: skip
        assert_refused(run, env, production, f"stopped on {canary.name}", "did not match")
        assert [e["event"] for e in run.events[canary.name]] == ["start", "failed", "rolled_back"]
        assert damaged not in model_releases(canary)
        assert registered_targets() == {canary.name}
    finally:
        elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": second.name}])
    assert registered_targets() == {h.name for h in env.hosts}

    # 2. Smoke prediction: it loads, but its answer to the schema's example is not usable.
    bundle = vector_bundle(workdir / "smoke", seed=103, nan_on_example=True)
    run = release("bad-smoke", "-e", f"release_bundle={bundle}", *BREAKING_OK)
    assert_refused(run, env, production, f"stopped on {canary.name}", "(unscorable_input)")
    assert [e["event"] for e in run.events[canary.name]] == ["start", "failed", "rolled_back"]

    # 3. Quality gate: refused at publishing, before any host is touched.
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

    # 4. Signature (issue 17): a bundle uploaded straight to the bucket with valid checksums,
    # unsigned or signed by a key the hosts do not trust, then `make release VERSION=...`:
    # refused on the controller before the plan is pinned, before any host changes.
    pointer = env.production()
    trusted = trusted_key_id()
    untrusted_key = workdir / "untrusted-key" / "signing.key"
    shutil.rmtree(untrusted_key.parent, ignore_errors=True)
    untrusted_key.parent.mkdir(parents=True)
    untrusted = generate_key(untrusted_key).key_id
    assert untrusted != trusted
    unsigned = env.publish(vector_bundle(workdir / "unsigned", seed=106), signing_key=None)
    wrongly_signed = env.publish(vector_bundle(workdir / "untrusted", seed=107), untrusted_key)
    try:
        for name, version, failed in [
            ("unsigned", unsigned, f"unsigned (no {unsigned}.tar.gz.sha256.sig)"),
            ("untrusted-key", wrongly_signed, f"signed by key {untrusted}, which is not trusted"),
        ]:
            run = release(f"bad-signature-{name}", "-e", f"release_version={version}")
            assert_refused(
                run, env, production, "Release refused before any host was touched",
                f"s3://{env.bucket}/models/{version}/{version}.tar.gz: signature check failed:"
                f" {failed}; trusted key ids: {trusted}",
            )  # fmt: skip
            assert run.events == {}
            assert env.production() == pointer
            for host in env.hosts:
                assert version not in model_releases(host), host.name
    finally:
        for version in (unsigned, wrongly_signed):
            env.remove(f"models/{version}/")

    # Only ever the canary, refused while it served (never drained: see the events above);
    # the second host was never reached (no step of its own) and nothing was put back
    # (nothing else had moved).
    for name in ("bad-checksum", "bad-smoke"):
        log = (REPO / ".cache" / "e2e" / f"release-{name}.log").read_text()
        assert f"{second.name}: not reached" in " ".join(log.split())
        assert "then back on" not in log
    assert model_releases(second) == second_releases


def test_an_app_release_without_a_valid_signature_is_refused(env: Env) -> None:
    """Issue 17: an app release uploaded straight to the bucket (the running release's
    tarball under a new name, its .sha256 matching, no signature), then `make release-app
    APP_VERSION=...`: refused on the controller before any host changes; latest.json,
    production and every host's app and model stay as they were."""
    model, latest = env.production(), env.latest_app()
    running = latest["version"]
    name = f"unsigned-{int(time.time())}"
    key = env.upload_unsigned_app_release(name)
    try:
        run = release(
            "bad-signature-app", "-e", f"release_app_version={name}",
            playbook="playbooks/release_app.yml",
        )  # fmt: skip
        assert_refused(
            run, env, model["version"],
            f"s3://{env.bucket}/{key}: signature check failed: unsigned"
            f" (no palpite-app-{name}.tar.gz.sha256.sig); trusted key ids: {trusted_key_id()}",
        )  # fmt: skip
        assert run.events == {}
        assert env.latest_app() == latest
        assert env.production() == model
        for host in env.hosts:
            assert app_release(host) == running, host.name
            assert name not in on_host(host, "ls /srv/palpite/app/releases").split(), host.name
    finally:
        env.remove(f"releases/app/{name}/")


def test_canary_failing_its_health_check_rolls_back(env: Env, workdir: Path) -> None:
    production = env.production()["version"]
    canary, second = env.hosts[0], env.hosts[1]
    second_releases = model_releases(second)
    bundle = vector_bundle(workdir / "unhealthy", seed=105)
    with no_reload_on(canary):
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
    card = front_door_request("GET", "/model").json()
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
    # The canary passed its bake on the load's traffic, and the figures were printed.
    canary = env.hosts[0]
    [baked] = [e for e in run.events[canary.name] if e["event"] == "baked"]
    assert re.match(r"canary: \d+ requests, 0 5xx \(0\.00%\), p99 <= ", baked["detail"]), baked
    assert "; old hosts: " in baked["detail"], baked
    assert f"bake of {canary.name} on {new}" in " ".join(run.output.split())
    assert "baked" not in [e["event"] for e in run.events[env.hosts[1].name]]


def test_rollback_under_load_fails_no_request(env: Env) -> None:
    pointer = env.production()
    new, old = pointer["version"], pointer["history"][0]["version"]
    card = front_door_request("GET", "/model").json()
    home, away = card["input_schema"]["fields"][0]["enum"][:2]

    # Issue 17: the version to go back to has lost its signature (a bucket writer removed
    # it): the rollback is refused on the controller before any host changes.
    signature = f"models/{old}/{old}.tar.gz.sha256.sig"
    saved = env.s3.get_object(Bucket=env.bucket, Key=signature)["Body"].read()
    env.s3.delete_object(Bucket=env.bucket, Key=signature)
    try:
        refused = release("rollback-unsigned", playbook="playbooks/rollback.yml")
    finally:
        env.s3.put_object(Bucket=env.bucket, Key=signature, Body=saved)
    assert_refused(
        refused, env, new, "Rollback refused before any host was touched",
        f"signature check failed: unsigned (no {old}.tar.gz.sha256.sig)",
    )  # fmt: skip
    assert refused.events == {}
    assert env.production() == pointer

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
    card = front_door_request("GET", "/model").json()
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


def test_an_app_release_failing_after_the_canary_switched_puts_every_host_back(env: Env) -> None:
    """Going back to the earlier build (an uploaded release) while the second host cannot
    reach the bucket and has lost that build from its disk once the canary has switched:
    the canary moves and comes back, the second never switches, releases/app/latest.json
    stays, and the load through the front door sees no failed request."""
    canary, second = env.hosts[0], env.hosts[1]
    model, running = env.production()["version"], env.latest_app()["version"]
    earlier = Path(on_host(canary, "readlink /srv/palpite/app/previous").strip()).name
    assert earlier != running
    card = front_door_request("GET", "/model").json()
    home, away = card["input_schema"]["fields"][0]["enum"][:2]
    canary_steps = OUT / "release-app-fault" / "events" / f"{canary.name}.jsonl"
    broke: list[bool] = []

    def lose_the_build_once_the_canary_switched() -> None:
        # Every host had it at the release's start (it installs on all of them first);
        # the second host's own step must download it again, and that download fails.
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if canary_steps.is_file() and '"switched"' in canary_steps.read_text():
                # Moved away at once (a rename), then deleted: the host never sees half
                # a directory, which its own clean-up would race with.
                on_host(
                    second,
                    f"mv /srv/palpite/app/releases/{earlier} /srv/palpite/app/.lost"
                    " && rm -rf /srv/palpite/app/.lost",
                )
                broke.append(True)
                return
            time.sleep(0.2)

    with bucket_cut_off(second):
        fault = threading.Thread(target=lose_the_build_once_the_canary_switched, daemon=True)
        fault.start()
        run, report, _ = under_load(
            "release-app-fault",
            (home, away),
            lambda: release(
                "release-app-fault",
                "-e",
                f"release_app_version={earlier}",
                playbook="playbooks/release_app.yml",
            ),
            rate=PACED_RATE,
        )
        fault.join(timeout=60)
    assert broke, "the canary never switched"
    assert run.result.returncode != 0
    output = " ".join(run.output.split())
    for needle in (f"stopped on {second.name}", "(all or none)", "releases/app/latest.json"):
        assert needle in output, needle
    steps = [e["event"] for e in run.events[canary.name]]
    forward = ["start", "installed", "drained", "switched", "healthy", "registered"]
    assert steps == forward + forward, steps
    assert "switched" not in [e["event"] for e in run.events[second.name]]
    assert env.latest_app()["version"] == running
    for host in env.hosts:
        assert app_release(host) == running
        assert serving(host) == model
    assert report.duration >= 30, report.summary()
    assert report.errors == [], report.errors[:5]
    assert report.failures == [], [(s.status, s.path) for s in report.failures[:10]]
    assert registered_targets() == {h.name for h in env.hosts}
