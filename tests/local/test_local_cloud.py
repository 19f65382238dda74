"""The local cloud on testbed hosts: playbooks/provision.yml with inventory/local (moto on the
testbed bridge, two emulated instances backed by two hosts, the front door), traffic
through the front door, deregistration with draining, teardown.

Runs as its own local environment (PALPITE_ENVIRONMENT=t7, moto on port 4577, front door at
10.231.0.5, app hosts at .6 and .7) so it does not disturb the default one (.2-.4).
"""

import concurrent.futures
import functools
import json
import os
import resource
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest

from tests.local.environment import changed_per_host, local_env

pytestmark = pytest.mark.testbed

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "inventory"))
from palpite_local_ec2 import moto_answers  # noqa: E402  (the local inventory's own probe)

BIN = Path(sys.executable).parent
TESTBED = REPO / "tests/testbed/testbed"
ENVIRONMENT = "t7"
PREFIX = f"palpite-{ENVIRONMENT}"
MOTO_PORT = 4577
FRONT_DOOR = "10.231.0.5"
APP_ADDRESSES = ["10.231.0.6", "10.231.0.7"]
ENDPOINT = f"http://10.231.0.1:{MOTO_PORT}"
WEB_PY = Path(__file__).with_name("web.py")
TIMES_FILE = REPO / ".cache" / "bench" / "provision-local.json"
# Held requests (the draining test) may wait longer than the front door's default 60 s
# when the machine is busy.
PROVISION_ARGS = ("-e", "front_door_proxy_read_timeout=300")

# The front door speaks HTTPS with the project's CA (made by provision: open after it).
LOCAL_CA = REPO / ".local-ca" / "ca.crt"


@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    tls = ssl.create_default_context(cafile=LOCAL_CA)
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=tls)
    )


def _env() -> dict[str, str]:
    return local_env(
        ENVIRONMENT,
        MOTO_PORT,
        int(FRONT_DOOR.rsplit(".", 1)[1]),
        [int(a.rsplit(".", 1)[1]) for a in APP_ADDRESSES],
    )


def _run(*cmd: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _playbook(path: str, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    proc = _run(str(BIN / "ansible-playbook"), path, *args)
    return proc, time.monotonic() - t0


def _get(url: str, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    try:
        with _opener().open(url, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _ec2():
    return boto3.client(
        "ec2",
        region_name="us-east-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _testbed_hosts() -> dict[str, list[str]]:
    out = subprocess.run([str(TESTBED), "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}


def _teardown() -> subprocess.CompletedProcess:
    proc, _ = _playbook("playbooks/teardown.yml", "-e", f"teardown_confirm={PREFIX}")
    return proc


def _leftovers() -> bool:
    return (REPO / ".local-env" / PREFIX / "moto.pid").exists() or any(
        h.startswith(f"{PREFIX}-") for h in _testbed_hosts()
    )


@pytest.fixture(scope="module")
def local_cloud() -> dict:
    if os.geteuid() != 0:
        pytest.skip("the testbed needs root")
    if _leftovers():  # of an interrupted run
        _teardown()
    cpu0 = _cpu()
    first, first_s = _playbook("playbooks/provision.yml", *PROVISION_ARGS)
    first_cpu = _cpu() - cpu0
    try:
        assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
        instances = [
            i
            for r in _ec2().describe_instances(
                Filters=[
                    {"Name": "tag:Environment", "Values": [ENVIRONMENT]},
                    {"Name": "instance-state-name", "Values": ["running"]},
                ]
            )["Reservations"]
            for i in r["Instances"]
        ]
        yield {"first": first, "first_s": first_s, "first_cpu": first_cpu, "instances": instances}
    finally:
        if _leftovers():
            down = _teardown()
            assert down.returncode == 0, down.stdout[-6000:] + down.stderr[-3000:]


def test_two_instances_are_backed_by_two_hosts(local_cloud: dict) -> None:
    instances = local_cloud["instances"]
    assert len(instances) == 2
    addresses = sorted(
        {t["Key"]: t["Value"] for t in i["Tags"]}["palpite:local-address"] for i in instances
    )
    assert addresses == APP_ADDRESSES
    hosts = _testbed_hosts()
    for address in APP_ADDRESSES:
        index = address.rsplit(".", 1)[1]
        assert hosts[f"{PREFIX}-app-{index}"][2:4] == [address, "running"]
    assert hosts[f"{PREFIX}-front-door"][2:4] == [FRONT_DOOR, "running"]

    # The local inventory addresses each instance by its backing host, never by the
    # emulated instance's own (made-up) address.
    inv = json.loads(
        _run(str(BIN / "ansible-inventory"), "--list").stdout,
        # ansible-inventory --list marks templated values as {"__ansible_unsafe": value}.
        object_hook=lambda o: o["__ansible_unsafe"] if set(o) == {"__ansible_unsafe"} else o,
    )
    by_id = {i["InstanceId"]: i for i in instances}
    assert sorted(inv["app"]["hosts"]) == sorted(by_id)
    for host in inv["app"]["hosts"]:
        tags = {t["Key"]: t["Value"] for t in by_id[host]["Tags"]}
        assert inv["_meta"]["hostvars"][host]["ansible_host"] == tags["palpite:local-address"]
        assert inv["_meta"]["hostvars"][host]["ansible_host"] != by_id[host]["PublicIpAddress"]
    assert inv["front_door"]["hosts"] == ["front-door"]


def test_front_door_answers_json_when_no_app_answers(local_cloud: dict) -> None:
    status, headers, body = _get(f"https://{FRONT_DOOR}/")
    assert status == 502
    assert headers["Content-Type"] == "application/json"
    assert "detail" in json.loads(body)
    status, _, body = _get(f"https://{FRONT_DOOR}/_front_door/health")
    assert (status, json.loads(body)) == (200, {"status": "ok", "upstreams": 2})


@pytest.fixture(scope="module")
def web(local_cloud: dict) -> dict[str, str]:
    """A trivial upstream on both app hosts, started through the local inventory."""
    ansible = str(BIN / "ansible")
    copy = _run(
        ansible, "app", "-m", "ansible.builtin.copy", "-a", f"src={WEB_PY} dest=/srv/web.py"
    )
    assert copy.returncode == 0, copy.stdout[-3000:]
    start = _run(
        ansible,
        "app",
        "-m",
        "ansible.builtin.shell",
        "-a",
        "systemctl is-active -q t7-web || systemd-run --unit t7-web python3 /srv/web.py",
    )
    assert start.returncode == 0, start.stdout[-3000:]
    names = {}
    for address in APP_ADDRESSES:
        for _ in range(50):
            try:
                status, _, body = _get(f"http://{address}/", timeout=2)
            except OSError:
                status = 0
            if status == 200:
                names[address] = body.decode()
                break
            time.sleep(0.2)
    assert len(names) == 2, names
    # The front door marked both hosts failed while nothing answered (fail_timeout 5 s).
    for _ in range(50):
        if _get(f"https://{FRONT_DOOR}/")[0] == 200:
            break
        time.sleep(0.3)
    return names


def _served_by(n: int) -> list[str]:
    seen = []
    for _ in range(n):
        status, headers, body = _get(f"https://{FRONT_DOOR}/")
        assert status == 200
        assert headers["X-Palpite-Upstream"].split(":")[0] in APP_ADDRESSES
        seen.append(body.decode())
    return seen


def test_front_door_balances_over_both_hosts(local_cloud: dict, web: dict[str, str]) -> None:
    seen = _served_by(20)
    assert set(seen) == set(web.values())


def _health_upstreams() -> int:
    return json.loads(_get(f"https://{FRONT_DOOR}/_front_door/health")[2])["upstreams"]


def _wait_for_upstreams(count: int, *, stable_for: float, timeout: float) -> bool:
    """Whether the front door's health reported `count` upstreams on every read (one per
    0.1 s) for `stable_for` seconds in a row, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    since = None
    while time.monotonic() < deadline:
        if _health_upstreams() != count:
            since = None
        elif since is None:
            since = time.monotonic()
        elif time.monotonic() - since >= stable_for:
            return True
        time.sleep(0.1)
    return False


def test_deregistered_host_drains_then_leaves_the_rotation(
    local_cloud: dict, web: dict[str, str]
) -> None:
    by_address = {
        {t["Key"]: t["Value"] for t in i["Tags"]}["palpite:local-address"]: i["InstanceId"]
        for i in local_cloud["instances"]
    }
    leaving, staying = APP_ADDRESSES[1], APP_ADDRESSES[0]
    target = ["-e", f"target_id={by_address[leaving]}"]

    # 1. Deregister in the target group only: the front door keeps both until it syncs.
    proc, _ = _playbook(
        "tests/local/target.yml", *target, "-e", "target_state=absent", "-e", "target_sync=false"
    )
    assert proc.returncode == 0, proc.stdout[-6000:]
    elb = boto3.client(
        "elbv2",
        region_name="us-east-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    [tg] = elb.describe_target_groups(Names=[f"{PREFIX}-app"])["TargetGroups"]
    targets = elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])
    assert [t["Target"]["Id"] for t in targets["TargetHealthDescriptions"]] == [by_address[staying]]
    assert set(_served_by(10)) == set(web.values())

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        # 2. Requests held in flight on both hosts (round robin spreads them).
        held = [pool.submit(_get, f"https://{FRONT_DOOR}/hold", 200) for _ in range(6)]
        for _ in range(100):
            counts = {a: int(_get(f"http://{a}/holding")[2]) for a in APP_ADDRESSES}
            if sum(counts.values()) == 6:
                break
            time.sleep(0.2)
        assert counts[leaving] >= 1, counts

        # 3. Sync the front door while they are in flight.
        sync = pool.submit(
            _playbook, "tests/local/target.yml", *target, "-e", "target_change=false"
        )
        #    nginx starts the new workers, sleeps 100 ms, then tells the old ones to stop
        #    accepting: in between (longer on a loaded machine) either may answer, so the
        #    new list counts as loaded once it has answered every read for a whole second.
        assert _wait_for_upstreams(1, stable_for=1.0, timeout=120), (
            sync.result()[0].stdout[-6000:] if sync.done() else "sync still running"
        )

        # 4. Reloaded: new requests go to the staying host only, while the sync still waits
        #    for the old workers, which serve the held requests.
        assert set(_served_by(10)) == {web[staying]}
        time.sleep(1)
        assert not sync.done(), "sync returned while requests were still in flight"

        # 5. Let the held requests finish: every one succeeds, then the sync returns.
        for address in APP_ADDRESSES:
            _get(f"http://{address}/release")
        results = [f.result(timeout=120) for f in held]
        proc, _ = sync.result(timeout=300)
    assert [status for status, _, _ in results] == [200] * 6
    assert web[leaving] in {body.decode() for _, _, body in results}
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert f"upstreams: {staying}" in proc.stdout
    assert set(_served_by(20)) == {web[staying]}

    # 6. Registered again, it is back in the rotation.
    proc, _ = _playbook("tests/local/target.yml", *target, "-e", "target_state=present")
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert set(_served_by(20)) == set(web.values())


def test_second_provision_changes_nothing(local_cloud: dict, web: dict[str, str]) -> None:
    cpu0 = _cpu()
    second, second_s = _playbook("playbooks/provision.yml", *PROVISION_ARGS)
    second_cpu = _cpu() - cpu0
    assert second.returncode == 0, second.stdout[-6000:]
    changed = changed_per_host(second)
    assert changed and all(v == 0 for v in changed.values()), second.stdout[-6000:]
    TIMES_FILE.parent.mkdir(parents=True, exist_ok=True)
    TIMES_FILE.write_text(
        json.dumps(
            {
                "provision_first_s": round(local_cloud["first_s"], 1),
                "provision_first_cpu_s": round(local_cloud["first_cpu"], 1),
                "provision_rerun_s": round(second_s, 1),
                "provision_rerun_cpu_s": round(second_cpu, 1),
                "load_average": os.getloadavg()[0],
            }
        )
    )


def test_teardown_removes_hosts_and_moto(local_cloud: dict) -> None:
    t0, cpu0 = time.monotonic(), _cpu()
    proc = _teardown()
    seconds, cpu = time.monotonic() - t0, _cpu() - cpu0
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert not [h for h in _testbed_hosts() if h.startswith(f"{PREFIX}-")]
    # Nothing answers as moto any more. (With no host left the bridge is gone too, and
    # on some networks a gateway then answers for the address: not moto.)
    assert not moto_answers(ENDPOINT)
    assert not (REPO / ".local-env" / PREFIX / "moto.pid").exists()
    again = _teardown()
    assert again.returncode == 0
    assert all(v == 0 for v in changed_per_host(again).values()), again.stdout[-4000:]
    times = json.loads(TIMES_FILE.read_text()) if TIMES_FILE.exists() else {}
    times.update(teardown_s=round(seconds, 1), teardown_cpu_s=round(cpu, 1))
    TIMES_FILE.write_text(json.dumps(times))
