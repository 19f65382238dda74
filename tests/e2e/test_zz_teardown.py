"""The teardown leaves nothing behind: no host, process, mount, bridge, NAT rule or
emulated resource. Runs last (the `teardown` marker; see conftest.py).

Other testbed hosts (the Molecule scenarios and the local cloud test in `make test`'s
other lanes, or run by hand meanwhile) share the testbed's bridge: while any of them runs,
or while `make test`'s lanes hold it (`testbed holds`), the bridge and its NAT rules stay
up (`testbed net-down` keeps them), so those two checks apply only when neither is so.
Everything else is checked by this environment's own names and ports."""

import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, LocalEnv, assert_ok, teardown

pytestmark = [pytest.mark.testbed, pytest.mark.teardown]

TESTBED = REPO / "tests" / "testbed" / "testbed"
HOST_PREFIX = "palpite-local-"
BRIDGE = "palpite0"
CONTROLLER = "10.231.0.1"
# moto (local_cloud_moto_port) and the git mirror of pyenv (local_pyenv_git_port: moto's + 4834).
MOTO_PORT = 4566
PORTS = (MOTO_PORT, MOTO_PORT + 4834)
RECAP = re.compile(r"^(\S+)\s*:\s*ok=\d+\s+changed=(\d+)", re.M)


def run(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout


def processes_mentioning(word: str) -> list[str]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if word in cmdline and "pytest" not in cmdline:
            found.append(f"{proc.name}: {cmdline.strip()}")
    return found


def test_teardown_leaves_nothing_behind(local_env: LocalEnv) -> None:
    result = teardown()
    assert_ok(result, "teardown")

    listed = run(str(TESTBED), "list").splitlines()
    hosts = [line for line in listed if line.startswith(HOST_PREFIX)]
    assert hosts == [], f"hosts left: {hosts}"
    assert processes_mentioning(HOST_PREFIX) == []
    ours = f" -p {MOTO_PORT} "
    assert [p for p in processes_mentioning("moto_server") if ours in f"{p} "] == []
    mounts = [m for m in Path("/proc/self/mounts").read_text().splitlines() if HOST_PREFIX in m]
    assert mounts == [], f"mounts left: {mounts}"
    others = [line.split()[0] for line in listed if line.split()[3:4] == ["running"]]
    # make test's lanes hold the bridge while they run (.ci/lanes.sh): it stays up for them
    held = run(str(TESTBED), "holds").strip()
    if not others and not held:
        bridge = subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True)
        assert bridge.returncode != 0, f"bridge {BRIDGE} is still there"
        rules = [
            line
            for table in ("nat", "filter")
            for line in run("iptables", "-t", table, "-S").splitlines()
            if f"palpite-testbed:{BRIDGE}" in line
        ]
        assert rules == [], f"NAT/forward rules left: {rules}"
    listening = run("ss", "-Htln")
    for port in PORTS:
        assert f"{CONTROLLER}:{port} " not in listening, f"something still listens on {port}"

    again = teardown()
    assert_ok(again, "a second teardown")
    recap = {host: int(changed) for host, changed in RECAP.findall(again.stdout)}
    assert recap and all(changed == 0 for changed in recap.values()), recap
