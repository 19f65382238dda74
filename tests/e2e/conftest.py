"""The local environment, brought up once for the end-to-end suite.

`site.yml` runs from nothing against the default inventory (moto on the testbed bridge,
testbed hosts behind the front door); every e2e test module shares that one environment,
and the session ends with the teardown (tests/e2e/test_zz_teardown.py asserts what it
leaves behind; the finalizer here tears down again in case that module did not run).
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
LOG_DIR = REPO / ".cache" / "e2e"
# The front door's address (inventory/local: the same environment variable). The app
# hosts' addresses come from the inventory: the testbed hands them out.
FRONT_DOOR_ADDRESS = f"10.231.0.{os.environ.get('PALPITE_LOCAL_FRONT_DOOR_INDEX') or 2}"
# HTTPS with the project's own CA (roles/local_ca), trusted as a user would: --cacert.
FRONT_DOOR = f"https://{FRONT_DOOR_ADDRESS}"
LOCAL_CA = REPO / ".local-ca" / "ca.crt"
TEARDOWN_CONFIRM = "palpite-local"
# Every firewall rule a fault test adds on the controller carries this comment, so that a
# run killed inside a fault (its `finally` never ran) cannot leave the next run cut off.
FAULT_COMMENT = "palpite-e2e-fault"


@dataclass(frozen=True)
class AppHost:
    name: str  # inventory name: the emulated instance id
    address: str

    @property
    def upstream(self) -> str:  # how the front door names it in X-Palpite-Upstream
        return f"{self.address}:80"


@dataclass(frozen=True)
class LocalEnv:
    url: str
    app_hosts: list[AppHost]
    site_seconds: float


@functools.cache
def front_door_tls() -> ssl.SSLContext:
    """A client context trusting the local CA only (site.yml made it: call after that)."""
    return ssl.create_default_context(cafile=LOCAL_CA)


def front_door_request(method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request through the front door over HTTPS, trusting the local CA only."""
    kwargs.setdefault("timeout", 10)
    return httpx.request(
        method, f"{FRONT_DOOR}{path}", verify=front_door_tls(), trust_env=False, **kwargs
    )


def ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    # Each task's time in the playbooks' logs (.cache/e2e/), as the Molecule scenarios have
    # it: where the suite's minutes go, task by task.
    env["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.profile_tasks"
    # A developer's own AWS settings must never reach the emulated cloud.
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(name, None)
    return env


def run_playbook(name: str, *args: str, log: str) -> subprocess.CompletedProcess[str]:
    """Run a playbook from the repository root; its output goes to .cache/e2e/<log>."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), name, *args]
    result = subprocess.run(
        cmd, cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=3600
    )
    (LOG_DIR / log).write_text(result.stdout + result.stderr)
    return result


def assert_ok(result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-60:])
        pytest.fail(f"{what} failed (exit {result.returncode}); log in {LOG_DIR}:\n{tail}")


def _unsafe(value: Any) -> str:
    return value["__ansible_unsafe"] if isinstance(value, dict) else str(value)


def inventory_app_hosts() -> list[AppHost]:
    """The app hosts as the default inventory lists them (the release's order)."""
    out = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "--list"],
        cwd=REPO,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    data = json.loads(out)
    hostvars = data["_meta"]["hostvars"]
    return [AppHost(h, _unsafe(hostvars[h]["ansible_host"])) for h in data["app"]["hosts"]]


def clear_faults() -> None:
    """Delete the firewall rules fault tests left behind (see FAULT_COMMENT)."""
    listed = subprocess.run(
        ["iptables", "-S"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    for rule in listed.splitlines():
        args = shlex.split(rule)  # iptables -S quotes a comment only when it must
        if args[:1] == ["-A"] and FAULT_COMMENT in args:
            subprocess.run(["iptables", "-D", *args[1:]], check=True, timeout=30)


def teardown() -> subprocess.CompletedProcess[str]:
    return run_playbook(
        "playbooks/teardown.yml", "-e", f"teardown_confirm={TEARDOWN_CONFIRM}", log="teardown.log"
    )


@pytest.fixture(scope="session")
def local_env() -> Iterator[LocalEnv]:
    # A leftover environment (or fault) from an interrupted run would hide what site.yml
    # does from nothing.
    clear_faults()
    teardown()
    try:
        start = time.monotonic()
        result = run_playbook("site.yml", log="site.log")
        seconds = time.monotonic() - start
        assert_ok(result, "site.yml from nothing")
        print(f"\nsite.yml from nothing: {seconds:.0f} s", file=sys.stderr)
        yield LocalEnv(url=FRONT_DOOR, app_hosts=inventory_app_hosts(), site_seconds=seconds)
    finally:
        # Also after a failed site.yml: nothing may outlive the session.
        clear_faults()
        teardown()


@pytest.fixture(scope="session")
def env(request: pytest.FixtureRequest) -> Any:
    """The release tests' view of the environment (tests/e2e/releasing.py's Env).
    PALPITE_E2E_EXISTING=1 uses an environment that is up already (`make demo`) instead of
    building one from nothing."""
    from tests.e2e.releasing import open_env  # it imports this module

    if os.environ.get("PALPITE_E2E_EXISTING") != "1":
        request.getfixturevalue("local_env")
    return open_env()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("release")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # site.yml's own checks first (its second run must find the state the first one left),
    # then the releases; the teardown checks end the session.
    def order(item: pytest.Item) -> tuple[bool, bool]:
        return item.get_closest_marker("teardown") is not None, item.path.name != "test_site.py"

    items.sort(key=order)
