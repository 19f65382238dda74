"""tests/testbed/testbed, the harness of systemd-nspawn hosts, on an isolated instance.

The instance has its own state directory, bridge (palpitetb0) and subnet (10.231.250.0/24),
so that `destroy-all` here cannot touch the hosts other tests or people run on palpite0.
It shares the rootfs tarball, SSH key and download caches (PALPITE_CACHE_DIR).
"""

import os
import shlex
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTBED = Path(__file__).resolve().parent / "testbed"
BRIDGE = "palpitetb0"
SUBNET = "10.231.250"

pytestmark = [
    pytest.mark.testbed,
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("systemd-nspawn"),
        reason="needs root and systemd-nspawn",
    ),
]


class Harness:
    def __init__(self, state: Path):
        self.state = state
        self.env = dict(
            os.environ,
            PALPITE_TESTBED_DIR=str(state),
            PALPITE_TESTBED_BRIDGE=BRIDGE,
            PALPITE_TESTBED_SUBNET=SUBNET,
        )

    def run(
        self, *args: str, check: bool = True, timeout: int = 180
    ) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [str(TESTBED), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"testbed {' '.join(args)}: rc={proc.returncode}\n{proc.stderr}")
        return proc

    def sh(self, name: str, command: str, check: bool = True) -> str:
        """Run a command in host NAME over SSH (the way Ansible gets in)."""
        return self.run("ssh", name, command, check=check).stdout

    def python(self, name: str, code: str) -> str:
        """Run Python code with the host's python3, over SSH."""
        return self.sh(name, "python3 -c " + shlex.quote(code))

    def exec(self, name: str, *command: str) -> str:
        """Run a command in host NAME through nsenter."""
        return self.run("exec", name, *command).stdout


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path) + "/"
    lines = Path("/proc/self/mounts").read_text().splitlines()
    return [line for line in lines if line.split()[1].startswith(prefix)]


def _tagged_iptables_rules() -> list[str]:
    rules = []
    for table in ("nat", "filter"):
        out = subprocess.run(
            ["iptables", "-t", table, "-S"], capture_output=True, text=True, check=True
        ).stdout
        rules += [r for r in out.splitlines() if f"palpite-testbed:{BRIDGE}" in r]
    return rules


def _bridge_exists() -> bool:
    return subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    tb = Harness(tmp_path_factory.mktemp("testbed-state"))
    tb.run("base", timeout=900)
    try:
        yield tb
    finally:
        tb.run("destroy-all", check=False)


def test_up_exec_ssh_list_key_down(testbed: Harness) -> None:
    out = testbed.run("up", "tbt-one", "20").stdout
    assert f"tbt-one up at {SUBNET}.20" in out
    # systemd is PID 1 and the system is up
    assert testbed.exec("tbt-one", "cat", "/proc/1/comm").strip() == "systemd"
    state = testbed.sh("tbt-one", "systemctl is-system-running --wait || true").strip()
    assert state in {"running", "degraded"}
    assert testbed.sh("tbt-one", "hostname").strip() == "tbt-one"
    assert testbed.sh("tbt-one", "ip -4 -o addr show host0").split()[3] == f"{SUBNET}.20/24"
    # `pid` is the host's systemd, usable with nsenter (community.docker.nsenter)
    pid = testbed.run("pid", "tbt-one").stdout.strip()
    assert Path(f"/proc/{pid}/comm").read_text().strip() == "systemd"
    assert testbed.run("list").stdout.split() == ["tbt-one", "20", f"{SUBNET}.20", "running", pid]
    key = Path(testbed.run("key").stdout.strip())
    assert key.exists() and (key.stat().st_mode & 0o077) == 0
    # `up` again is a no-op on a running host
    assert testbed.run("up", "tbt-one", "20").stdout.split()[-1] == pid
    # another host cannot take its index
    assert testbed.run("up", "tbt-clash", "20", check=False).returncode != 0

    testbed.run("down", "tbt-one")
    assert testbed.run("list").stdout == ""
    assert not _processes_mentioning(f"{testbed.state}/hosts/tbt-one")
    assert not _mounts_under(testbed.state / "hosts")


def test_network_controller_peers_and_nat(testbed: Harness) -> None:
    testbed.run("up", "tbt-a", "21")
    testbed.run("up", "tbt-b", "22")
    # host to host
    connect = "import socket; print(socket.create_connection(({!r}, {}), 5).recv(64).decode())"
    banner = testbed.python("tbt-a", connect.format(f"{SUBNET}.22", 22))
    assert "SSH-2.0" in banner
    # host to a server on the controller's bridge address (where moto and the mirrors listen)
    server = socket.create_server((f"{SUBNET}.1", 0))
    port = server.getsockname()[1]
    token = uuid.uuid4().hex

    def serve() -> None:
        conn, _ = server.accept()
        conn.sendall(token.encode())
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    got = testbed.python("tbt-b", connect.format(f"{SUBNET}.1", port))
    thread.join(5)
    server.close()
    assert got.strip() == token
    # out through NAT to PyPI, over TLS, trusting the controller's CAs
    status = testbed.python(
        "tbt-a",
        "import urllib.request as u; "
        "print(u.urlopen('https://pypi.org/simple/pip/', timeout=30).status)",
    )
    assert status.strip() == "200"
    testbed.run("down", "tbt-a")
    testbed.run("down", "tbt-b")


def test_download_caches_are_shared(testbed: Harness) -> None:
    testbed.run("up", "tbt-c", "23")
    testbed.run("up", "tbt-d", "24")
    name = f"palpite-test-{uuid.uuid4().hex}"
    # pip's cache directory: one writable directory bound into every host
    testbed.sh("tbt-c", f"echo hello > /var/cache/palpite/pip/{name}")
    assert testbed.sh("tbt-d", f"cat /var/cache/palpite/pip/{name}").strip() == "hello"
    assert "cache-dir = /var/cache/palpite/pip" in testbed.sh("tbt-d", "cat /etc/pip.conf")
    # apt: a .deb a host downloaded is in the pool, visible to hosts started later
    testbed.sh("tbt-c", f"echo deb > /var/cache/apt/archives/{name}_1_all.deb")
    pool = Path(os.environ.get("PALPITE_CACHE_DIR", "/var/cache/palpite")) / "apt-archives"
    try:
        testbed.run("down", "tbt-c")
        assert (pool / f"{name}_1_all.deb").exists()
        testbed.run("up", "tbt-e", "25")
        assert testbed.sh("tbt-e", f"cat /var/cache/apt/archives/{name}_1_all.deb").strip() == "deb"
        # a host's writes stay in its own layer: the pool is not changed by them
        testbed.sh("tbt-e", f"rm /var/cache/apt/archives/{name}_1_all.deb")
        assert (pool / f"{name}_1_all.deb").exists()
    finally:
        (pool / f"{name}_1_all.deb").unlink(missing_ok=True)
        cache = Path(os.environ.get("PALPITE_CACHE_DIR", "/var/cache/palpite")) / "hostcache/pip"
        (cache / name).unlink(missing_ok=True)
    testbed.run("down", "tbt-d")
    testbed.run("down", "tbt-e")


def test_reboot_inside_a_host_is_relaunched(testbed: Harness) -> None:
    testbed.run("up", "tbt-reboot", "26")
    pid_before = testbed.run("pid", "tbt-reboot").stdout.strip()
    testbed.sh("tbt-reboot", "echo kept > /root/persistent; echo gone > /run/volatile")
    testbed.sh("tbt-reboot", "systemctl reboot", check=False)

    deadline = time.monotonic() + 90
    state = ""
    while time.monotonic() < deadline:
        proc = testbed.run("ssh", "tbt-reboot", "systemctl is-system-running", check=False)
        state = proc.stdout.strip()
        pid_now = testbed.run("pid", "tbt-reboot", check=False).stdout.strip()
        if state in {"running", "degraded"} and pid_now and pid_now != pid_before:
            break
        time.sleep(1)
    else:
        pytest.fail(f"host did not come back after reboot (state {state!r})")

    # a new boot of the same host: its disk kept, its tmpfs emptied, its address the same
    assert testbed.sh("tbt-reboot", "cat /root/persistent").strip() == "kept"
    assert testbed.sh("tbt-reboot", "test -e /run/volatile || echo absent").strip() == "absent"
    assert (testbed.state / "hosts/tbt-reboot/reboots").read_text().strip() == "1"
    assert "running" in testbed.run("list").stdout
    # a poweroff is not relaunched
    testbed.sh("tbt-reboot", "systemctl poweroff", check=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "running" in testbed.run("list").stdout:
        time.sleep(0.5)
    assert "stopped" in testbed.run("list").stdout
    testbed.run("down", "tbt-reboot")


def test_destroy_all_leaves_nothing(testbed: Harness) -> None:
    testbed.run("up", "tbt-x", "27")
    testbed.run("up", "tbt-y", "28")
    assert _processes_mentioning(str(testbed.state / "hosts"))
    assert _mounts_under(testbed.state)
    assert _bridge_exists()
    assert _tagged_iptables_rules()

    testbed.run("destroy-all")

    assert not _processes_mentioning(str(testbed.state / "hosts"))
    assert not _processes_mentioning(f"_supervise {testbed.state} ")
    assert not _mounts_under(testbed.state)
    assert not _bridge_exists()
    assert not _tagged_iptables_rules()
    assert not (testbed.state / "hosts").exists()
    assert testbed.run("list").stdout == ""
    # nothing left to destroy is not an error
    testbed.run("destroy-all")


def test_net_down_waits_for_the_last_host(testbed: Harness) -> None:
    testbed.run("up", "tbt-net", "29")
    assert testbed.run("net-down").stdout.startswith("kept: host tbt-net")
    assert _bridge_exists() and _tagged_iptables_rules()
    testbed.run("down", "tbt-net")
    assert testbed.run("net-down").stdout.strip() == f"removed: bridge {BRIDGE} and its NAT rules"
    assert not _bridge_exists() and not _tagged_iptables_rules()
    assert testbed.run("net-down").stdout.strip() == "absent"


def test_a_hold_keeps_the_bridge_until_its_process_ends(testbed: Harness) -> None:
    # make test's lanes hold the bridge: one lane's last host going down must not take it
    # from another lane that is starting its services on the controller's address.
    holder = subprocess.Popen(["sleep", "120"])
    try:
        testbed.run("hold", "lanes", str(holder.pid))
        assert _bridge_exists() and _tagged_iptables_rules()
        assert testbed.run("holds").stdout.strip() == f"lanes {holder.pid}"
        assert testbed.run("net-down").stdout.strip() == f"kept: held by lanes (pid {holder.pid})"
        assert _bridge_exists()
        # a holder that died without releasing counts for nothing
        holder.kill()
        holder.wait()
        assert testbed.run("holds").stdout == ""
        assert testbed.run("net-down").stdout.strip() == (
            f"removed: bridge {BRIDGE} and its NAT rules"
        )
        # and a released hold: up and down again
        holder = subprocess.Popen(["sleep", "120"])
        testbed.run("hold", "lanes", str(holder.pid))
        testbed.run("release", "lanes")
        assert testbed.run("net-down").stdout.strip().startswith("removed: ")
        assert not _bridge_exists()
    finally:
        holder.kill()
        holder.wait()
    assert testbed.run("hold", "lanes", str(holder.pid), check=False).returncode != 0
