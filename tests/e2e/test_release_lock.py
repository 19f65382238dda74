"""One change at a time, and resuming after an interrupted run (the fleet lock and the
journal), on the local environment after test_release_guardrails.py (production on a
football model A, the one it was rolled back from, B, still published). Under the paced
load of the guardrail scenarios (PACED_RATE: these are about what the fleet does, not how
much it carries; releasing.py says why), every request logged:
  1. a release of B killed with SIGKILL (playbook and wrapper) while the canary is out of
     rotation: the lock stays, the next release is refused naming the dead holder, `make
     release-unlock` breaks it and says what the journal left, and `make release` of B
     reconciles (the canary the dead run drained registered first) and finishes it.
     Production B, its history A. No failed request.
  2. two releases of A (production's history) started together: exactly one runs, the
     other exits within 10 s naming the holder and does nothing; the one that runs is
     interrupted (SIGINT to its process group, as a terminal's Ctrl-C) while the canary is
     out of rotation: its wrapper gives the lock back and the journal stays; `make
     rollback` reconciles (the canary registered first) and puts every host on what
     production.json names (B), not on its history (A, the version the interrupted run
     was releasing). No failed request.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import LOG_DIR, REPO, ansible_env, run_playbook
from tests.e2e.releasing import (
    BREAKING_OK,
    PACED_RATE,
    SHORT_BAKE,
    Env,
    Run,
    card_teams,
    current_link,
    registered_targets,
    release,
    serving,
    under_load,
)

pytestmark = pytest.mark.testbed
# A host's journal phases from its drain (journaled before it starts) to its registration.
OUT_OF_ROTATION = {"draining", "switched", "healthy"}


@dataclass
class Wrapped:
    """A playbook under ml/fleet_run.py (as the make targets run it), in its own process
    group, as a terminal would run it."""

    name: str
    process: subprocess.Popen[str]
    started: float

    @property
    def log(self) -> Path:
        return LOG_DIR / f"release-{self.name}.log"

    def output(self) -> str:
        return " ".join(self.log.read_text().split())


def start_wrapped(name: str, playbook: str, *args: str) -> Wrapped:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = (LOG_DIR / f"release-{name}.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "ml.fleet_run", playbook, *args],
        cwd=REPO,
        env=ansible_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    return Wrapped(name, process, time.monotonic())


def lock(env: Env) -> dict[str, Any] | None:
    try:
        return env.pointer("locks/fleet.json")
    except env.s3.exceptions.NoSuchKey:
        return None


def journal(env: Env) -> dict[str, Any]:
    return env.pointer("locks/journal.json")


def wait_until_out_of_rotation(env: Env, host: str, run: Wrapped) -> str:
    """Wait until the run's journal has `host` draining or switched; return the phase."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert run.process.poll() is None, f"{run.name} ended: {run.output()[-2000:]}"
        held = lock(env)
        with contextlib.suppress(env.s3.exceptions.NoSuchKey):
            current = journal(env)
            phase = current["hosts"].get(host, "")
            if held and current["run_id"] == held["run_id"] and phase in OUT_OF_ROTATION:
                return phase
        time.sleep(0.2)
    raise AssertionError(f"{host} never left rotation in {run.name}")


def stop_out_of_rotation(env: Env, run: Wrapped, host: str, signum: int) -> dict[str, Any]:
    """Send `signum` to the run's process group (SIGINT: a terminal's Ctrl-C; SIGKILL: the
    controller dies) once `host` is out of rotation; what the run left behind."""
    wait_until_out_of_rotation(env, host, run)
    os.killpg(run.process.pid, signum)
    code = run.process.wait(timeout=120)
    left = journal(env)
    return {"code": code, "lock": lock(env), "journal": left, "phase": left["hosts"][host]}


def production_and_the_one_before(env: Env) -> tuple[str, str, tuple[str, str]]:
    """Production's version, the one before it (history), and two clubs both know."""
    pointer = env.production()
    production, earlier = pointer["version"], pointer["history"][0]["version"]
    home, away = sorted(card_teams(env, production) & card_teams(env, earlier))[:2]
    return production, earlier, (home, away)


def assert_fleet_at_rest(env: Env, version: str) -> None:
    for host in env.hosts:
        assert serving(host) == version, host.name
        assert current_link(host) == version, host.name
    assert registered_targets() == {h.name for h in env.hosts}
    assert lock(env) is None
    assert journal(env)["finished"] is True


def assert_no_failure(report: Any) -> None:
    assert report.duration >= 30, report.summary()
    assert report.errors == [], report.errors[:5]
    assert [s for s in report.sent if s.status is None or s.status >= 500] == []
    assert report.failures == [], [(s.status, s.path) for s in report.failures[:10]]


def test_a_dead_run_keeps_the_lock_until_unlocked_and_is_then_finished(env: Env) -> None:
    pointer = env.production()
    old, target = pointer["version"], pointer["rolled_back_from"]
    canary = env.hosts[0]
    home, away = sorted(card_teams(env, old) & card_teams(env, target))[:2]
    args = ("-e", f"release_version={target}", *BREAKING_OK, *SHORT_BAKE)
    seen: dict[str, Any] = {}

    def killed_then_finished() -> Run:
        dead = start_wrapped("lock-killed", "playbooks/release.yml", *args)
        seen.update(stop_out_of_rotation(env, dead, canary.name, signal.SIGKILL))
        start = time.monotonic()
        seen["refused"] = release("lock-refused", "-e", f"release_version={target}")
        seen["refused_seconds"] = time.monotonic() - start
        seen["unlock"] = run_playbook(
            "playbooks/fleet.yml", "-e", "fleet_command=unlock", log="release-lock-unlock.log"
        )
        return release("lock-release-after-unlock", *args)

    run, report, _ = under_load("lock-killed", (home, away), killed_then_finished, rate=PACED_RATE)
    stale = seen["lock"]  # nobody gave it back
    assert stale is not None and stale["operation"] == "release"
    refused = seen["refused"]
    assert refused.result.returncode != 0
    refusal = " ".join(refused.output.split())
    assert "release refused, the fleet is busy" in refusal
    assert f"run {stale['run_id']}" in refusal and stale["holder"] in refusal
    assert refused.events == {}
    assert seen["refused_seconds"] < 30, seen["refused_seconds"]
    unlock = " ".join((seen["unlock"].stdout + seen["unlock"].stderr).split())
    assert seen["unlock"].returncode == 0, unlock[-2000:]
    assert f"broke the lock: {stale['holder']}" in unlock
    assert f"the journal left unfinished: {canary.name}: {seen['phase']}" in unlock

    assert run.result.returncode == 0, run.output[-4000:]
    output = " ".join(run.output.split())
    assert f"{canary.name} ({seen['phase']} when the run stopped): serves" in output
    assert "registered again" in output
    assert env.production()["version"] == target
    assert env.production()["history"][0]["version"] == old
    assert_fleet_at_rest(env, target)
    assert_no_failure(report)
    print(json.dumps({k: v for k, v in seen.items() if k.endswith("seconds")}))


def test_one_run_at_a_time_and_an_interrupted_release_is_undone_by_rollback(env: Env) -> None:
    production, earlier, (home, away) = production_and_the_one_before(env)
    canary = env.hosts[0]
    args = ("-e", f"release_version={earlier}", *BREAKING_OK, *SHORT_BAKE)
    seen: dict[str, Any] = {}

    first = start_wrapped("lock-first", "playbooks/release.yml", *args)
    second = start_wrapped("lock-second", "playbooks/release.yml", *args)
    # Exactly one runs: the other is refused within 10 s, naming the holder. The paced load
    # starts once that is seen (the one that runs is still preparing: reconcile, journal,
    # minimum healthy come before its first drain), so it covers every host's move without
    # competing with the two starts for the two cores.
    deadline = time.monotonic() + 30
    while first.process.poll() is None and second.process.poll() is None:
        assert time.monotonic() < deadline, "neither release was refused"
        time.sleep(0.1)
    loser, winner = (first, second) if first.process.poll() is not None else (second, first)
    seen["refused_after"] = time.monotonic() - loser.started
    seen["loser"], seen["loser_code"] = loser.output(), loser.process.returncode
    seen["holder"] = lock(env)

    def interrupted_then_rolled_back() -> Run:
        seen.update(stop_out_of_rotation(env, winner, canary.name, signal.SIGINT))
        return release("lock-rollback", playbook="playbooks/rollback.yml")

    run, report, _ = under_load(
        "lock-interrupted", (home, away), interrupted_then_rolled_back, rate=PACED_RATE
    )
    assert seen["loser_code"] != 0
    assert seen["refused_after"] < 10, seen["refused_after"]
    assert "release refused, the fleet is busy" in seen["loser"]
    assert seen["holder"]["run_id"] in seen["loser"]
    assert "drained" not in seen["loser"] and "draining" not in seen["loser"]  # no host reached
    assert seen["code"] != 0
    assert seen["lock"] is None  # the wrapper gave it back ...
    assert seen["journal"]["finished"] is False  # ... and kept the journal
    assert seen["phase"] in OUT_OF_ROTATION

    assert run.result.returncode == 0, run.output[-4000:]
    output = " ".join(run.output.split())
    assert "an interrupted run left the fleet unfinished" in output
    assert f"{canary.name} ({seen['phase']} when the run stopped): serves" in output
    # Back to what production.json names, which the interrupted run never moved; not to
    # its history (which names the version the interrupted run was releasing).
    assert env.production()["version"] == production
    assert_fleet_at_rest(env, production)
    assert_no_failure(report)
