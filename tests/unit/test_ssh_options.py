"""SSH host-key checking: the options each inventory renders, no global override, and a
changed host key failing a play (an sshd on loopback playing an AWS instance)."""

import configparser
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.local_server import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
INSTANCE = "i-0123456789abcdef0"
SSHD = Path("/usr/sbin/sshd")


def _inventory(tmp_path: Path, name: str, group: str, host_vars: dict) -> Path:
    """A static inventory at <tmp>/inventory/<name> using the real group_vars of that inventory."""
    inv = tmp_path / "inventory" / name
    inv.mkdir(parents=True)
    (inv / "group_vars").symlink_to(REPO / "inventory" / name / "group_vars")
    hosts = {"all": {"children": {group: {"hosts": {INSTANCE: host_vars}}}}}
    (inv / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return inv


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "PALPITE_"))}
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="false",
        PALPITE_PROJECT="palpite",
        PALPITE_ENVIRONMENT="test",
        **extra,
    )
    return env


def _rendered(inv: Path, tmp_path: Path) -> tuple[str, str]:
    proc = subprocess.run(
        [
            str(BIN / "ansible"),
            "-i",
            str(inv),
            INSTANCE,
            "-m",
            "ansible.builtin.debug",
            "-a",
            "msg={{ ansible_ssh_common_args }}|{{ ansible_host_key_checking | default('unset') }}",
        ],
        cwd=REPO,
        env=_env(ANSIBLE_CALLBACK_RESULT_FORMAT="json"),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(proc.stdout.split("=>", 1)[1])
    args, checking = result["msg"].rsplit("|", 1)
    return args, checking


def test_ansible_cfg_checks_host_keys() -> None:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(REPO / "ansible.cfg")
    assert cfg.get("defaults", "host_key_checking", fallback="True").lower() in ("true", "yes")
    ssh_args = cfg.get("ssh_connection", "ssh_args")
    assert "StrictHostKeyChecking" not in ssh_args
    assert "UserKnownHostsFile" not in ssh_args


def test_molecule_scenarios_record_no_host_key_on_this_machine() -> None:
    scenarios = sorted(REPO.glob("roles/*/molecule/*/molecule.yml"))
    assert scenarios
    for path in scenarios:
        cfg = yaml.safe_load(path.read_text())["ansible"]["cfg"]
        assert "UserKnownHostsFile=/dev/null" in cfg["ssh_connection"]["ssh_args"], path


# The throwaway Python builder (playbooks/python_builder.yml) is pinned like an app instance.
@pytest.mark.parametrize("group", ["app", "python_builder"])
def test_aws_inventory_pins_per_instance_id_into_the_project_known_hosts(
    tmp_path: Path, group: str
) -> None:
    inv = _inventory(tmp_path, "aws", group, {"ansible_host": "198.51.100.7"})
    args, checking = _rendered(inv, tmp_path)
    known_hosts = (inv / "../../secrets/palpite-test.known_hosts").as_posix()
    assert args.split() == [
        "-o",
        f"HostKeyAlias={INSTANCE}",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "StrictHostKeyChecking=accept-new",
        "-o",
        "HashKnownHosts=no",
    ]
    assert checking == "True"


def test_local_inventory_alone_relaxes_checking_and_records_nothing(tmp_path: Path) -> None:
    inv = _inventory(tmp_path, "local", "app", {"ansible_host": "10.231.0.3"})
    args, checking = _rendered(inv, tmp_path)
    assert args.split() == [
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
    ]
    assert checking == "False"


# --- a changed host key ----------------------------------------------------------------


def _keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30
    )
    return path


class _Sshd:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = free_port()
        self.client_key = _keygen(work / "client")
        (work / "authorized_keys").write_text((work / "client.pub").read_text())
        self.config = work / "sshd_config"
        self.config.write_text(
            f"ListenAddress 127.0.0.1\nAuthorizedKeysFile {work}/authorized_keys\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nPidFile none\n"
        )
        self.proc: subprocess.Popen | None = None

    def start(self, host_key: Path) -> None:
        self.stop()
        self.proc = subprocess.Popen(
            [
                str(SSHD),
                "-D",
                "-e",
                "-p",
                str(self.port),
                "-f",
                str(self.config),
                "-h",
                str(host_key),
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.work / "sshd.log").open("a"),
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert self.proc.poll() is None, (self.work / "sshd.log").read_text()
                time.sleep(0.1)
        pytest.fail("sshd did not listen within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[_Sshd]:
    if os.geteuid() != 0 or not SSHD.exists():
        pytest.skip("needs root and /usr/sbin/sshd (Debian: openssh-server)")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    server = _Sshd(tmp_path)
    try:
        yield server
    finally:
        server.stop()
        # Close the ControlPersist masters the plays left.
        for sock in (tmp_path / "cp").glob("*"):
            subprocess.run(
                ["ssh", "-O", "exit", "-o", f"ControlPath={sock}", "x"],
                capture_output=True,
                timeout=10,
                check=False,
            )


def _play(inv: Path, sshd: _Sshd, playbook: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(inv),
            str(playbook),
            "-e",
            f"ansible_user=root ansible_become=false ansible_port={sshd.port}",
            "-e",
            f"ansible_ssh_private_key_file={sshd.client_key}",
        ],
        cwd=REPO,
        env=_env(ANSIBLE_SSH_CONTROL_PATH_DIR=str(sshd.work / "cp"), ANSIBLE_TIMEOUT="10"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_changed_host_key_fails_the_play(tmp_path: Path, sshd: _Sshd) -> None:
    inv = _inventory(tmp_path, "aws", "app", {"ansible_host": "127.0.0.1"})
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: app\n  gather_facts: false\n  tasks:\n    - name: Reach the host\n"
        "      ansible.builtin.raw: 'true'\n"
    )
    known_hosts = tmp_path / "secrets" / "palpite-test.known_hosts"
    known_hosts.parent.mkdir()
    first_key = _keygen(tmp_path / "host_key_1")
    sshd.start(first_key)
    first = _play(inv, sshd, playbook)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert re.search(r"ok=1\s+changed=1\s+unreachable=0", first.stdout), first.stdout
    # Accepted on first use, under the instance id (not the address).
    pinned = known_hosts.read_text().split()
    assert pinned[0] == INSTANCE
    assert pinned[1:3] == (tmp_path / "host_key_1.pub").read_text().split()[:2]

    sshd.start(_keygen(tmp_path / "host_key_2"))  # the "instance" now shows another key
    for cp in (tmp_path / "cp").glob("*"):  # no reuse of the first run's connection
        subprocess.run(
            ["ssh", "-O", "exit", "-o", f"ControlPath={cp}", "x"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    second = _play(inv, sshd, playbook)
    output = second.stdout + second.stderr
    assert second.returncode != 0, output[-3000:]
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in output, output[-3000:]
    assert f"Host key for {INSTANCE} has changed" in output, output[-3000:]
    assert re.search(r"ok=0\s+changed=0\s+unreachable=1", second.stdout), second.stdout
    assert known_hosts.read_text().split()[:3] == pinned[:3]  # the pin is kept
