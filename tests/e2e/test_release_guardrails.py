"""Release guardrails on the local environment, after test_release.py (production on a
football model, the one it was rolled back from still published):
  1. all or none: the second host is lost after the canary switched (the controller's SSH
     to it cut once the canary is registered again): the release stops there as an
     ordinary failure, the canary goes back, both end on the old model, registered,
     production unchanged, the fleet given back, no failed request under load (the app
     release's own test cuts the second host's downloads instead);
  2. a change to the service's environment applied with `site.yml --tags app` under load:
     the hosts restart one at a time behind a drained target, no failed request;
  3. `make patch` with the reboot forced, under load: the same.
Each runs under a paced client at PACED_RATE (releasing.py says why).
Minimum healthy (a release refused before draining the canary when the second host is out
of the target group, let through with release_min_healthy=0) runs inside
test_release.py's bad-checksum release, which needs a canary drain anyway.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.conftest import front_door_request
from tests.e2e.releasing import (
    BREAKING_OK,
    ENV_FILE,
    NO_BAKE,
    PACED_RATE,
    Env,
    assert_no_failed_request,
    assert_one_host_at_a_time,
    card_teams,
    current_link,
    on_host,
    registered_targets,
    release,
    serving,
    ssh_cut_off_once_registered,
    under_load,
)

pytestmark = pytest.mark.testbed


def test_a_failure_after_the_canary_switched_puts_every_host_back(env: Env) -> None:
    pointer = env.production()
    old, target = pointer["version"], pointer["rolled_back_from"]  # a football model, published
    canary, second = env.hosts[0], env.hosts[1]
    home, away = sorted(card_teams(env, old) & card_teams(env, target))[:2]

    with ssh_cut_off_once_registered(env, second, canary) as cut:
        run, report, _ = under_load(
            "release-fault",
            (home, away),
            lambda: release(
                "release-fault",
                "-e",
                f"release_version={target}",
                *BREAKING_OK,
                *NO_BAKE,
                "-e",
                "release_connect_timeout=5",  # of 30: the host is gone, not slow
            ),
            rate=PACED_RATE,
        )
    assert cut, "the canary was never registered again: the fault was not made"
    assert run.result.returncode != 0
    output = " ".join(run.output.split())
    for needle in (
        f"stopped on {second.name}",
        "could not be reached",
        "nothing on it was changed",
        "(all or none)",
        "models/production.json",
    ):
        assert needle in output, needle
    assert f"{canary.name}: moved {old} -> {target}" in output
    assert f"{second.name}: unreachable" in output
    # The canary moved and came back through the same flow; the second was never touched.
    steps = [e["event"] for e in run.events[canary.name]]
    forward = ["start", "drained", "switched", "healthy", "registered"]
    assert steps == [*forward, *forward], steps
    assert [e["version"] for e in run.events[canary.name]] == [target] * 5 + [old] * 5
    assert second.name not in run.events
    assert env.production() == pointer
    for host in env.hosts:
        assert serving(host) == old
        assert current_link(host) == old
    # The run gave the fleet back: the next one is not refused as busy.
    with pytest.raises(env.s3.exceptions.NoSuchKey):
        env.pointer("locks/fleet.json")
    # Zero failed requests across the whole run, through the front door.
    summary = report.summary()
    assert report.duration >= 30, summary
    assert report.errors == [], report.errors[:5]
    assert report.failures == [], [(s.status, s.path) for s in report.failures[:10]]
    assert registered_targets() == {h.name for h in env.hosts}


# ------------------------------------------- guardrails (fleet changes one host at a time)


def test_a_configuration_change_restarts_hosts_one_at_a_time_under_load(env: Env) -> None:
    card = front_door_request("GET", "/model").json()
    home, away = card["input_schema"]["fields"][0]["enum"][:2]
    # A value of its own, so that the change is a change on an environment this ran on.
    value = str(time.time_ns())
    marker = json.dumps({"model_api_extra_environment": {"PALPITE_RELEASE_TEST": value}})
    run, report, _ = under_load(
        "configure-env",
        (home, away),
        # What a user runs for a change to the service alone: site.yml, the app's tag.
        lambda: release("configure-env", "--tags", "app", "-e", marker, playbook="site.yml"),
        rate=PACED_RATE,
    )
    assert_no_failed_request(run, report, env)
    assert_one_host_at_a_time(run, env)
    for host in env.hosts:
        assert [e["event"] for e in run.events[host.name]] == [
            "start", "drained", "switched", "healthy", "registered"
        ]  # fmt: skip
        assert f"PALPITE_RELEASE_TEST={value}" in on_host(host, f"cat {ENV_FILE}")
    # No way back needed: test_site.py's second site.yml ran before, the teardown follows.


# The second host's reboot command fails once, as one did right after the updates in a
# clean-clone run ("Failed to schedule shutdown: Transport endpoint is not connected":
# shutdown could not reach logind): `shutdown` is diverted (dpkg-divert, so an upgrade of
# systemd-sysv installs beside it) to a script that puts the real one back and fails.
DIVERT = "dpkg-divert --local --rename --divert /sbin/shutdown.palpite-test"
SHUTDOWN_FAILS_ONCE = f"""
set -eu
{DIVERT} --add /sbin/shutdown >/dev/null
printf '%s\\n' '#!/bin/sh' 'rm -f /sbin/shutdown' '{DIVERT} --remove /sbin/shutdown >/dev/null' \\
  'echo "Failed to schedule shutdown: Transport endpoint is not connected" >&2' 'exit 1' \\
  > /sbin/shutdown
chmod 0755 /sbin/shutdown
"""
SHUTDOWN_PUT_BACK = (
    f'[ -z "$(dpkg-divert --list /sbin/shutdown)" ] || {{ rm -f /sbin/shutdown;'
    f" {DIVERT} --remove /sbin/shutdown >/dev/null; }}"
)


def test_patch_with_a_forced_reboot_fails_no_request(env: Env) -> None:
    card = front_door_request("GET", "/model").json()
    home, away = card["input_schema"]["fields"][0]["enum"][:2]
    model = env.production()["version"]
    second = env.hosts[1]
    pid1_started = {h.name: on_host(h, "cut -d' ' -f22 /proc/1/stat").strip() for h in env.hosts}
    on_host(second, SHUTDOWN_FAILS_ONCE)
    try:
        run, report, _ = under_load(
            "patch",
            (home, away),
            lambda: release("patch", "-e", "patch_reboot=always", playbook="playbooks/patch.yml"),
            rate=PACED_RATE,
        )
    finally:  # the real shutdown back, had the run never called it
        on_host(second, SHUTDOWN_PUT_BACK)
    assert_no_failed_request(run, report, env)
    assert_one_host_at_a_time(run, env)
    # The failed reboot command was asked again, and the second ask rebooted the host.
    assert f"FAILED - RETRYING: [{second.name}]: Reboot" in run.output, run.output[-3000:]
    shipped = on_host(second, "dpkg-divert --list /sbin/shutdown; readlink /sbin/shutdown")
    assert shipped.strip() == "/bin/systemctl"  # no diversion left, the real one back
    for host in env.hosts:
        assert on_host(host, "cut -d' ' -f22 /proc/1/stat").strip() != pid1_started[host.name], (
            f"{host.name} did not reboot"
        )
        assert serving(host) == model
