"""Run the provisioning playbooks against the shared moto server (tests/conftest.py)."""

import os
import re
import resource
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROJECT = "palpite"
ENVIRONMENT = "test"
PREFIX = f"{PROJECT}-{ENVIRONMENT}"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account
SSH_CIDR = "203.0.113.7/32"

_RECAP = re.compile(
    r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M
)


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float
    cpu_seconds: float  # user + system time of ansible and every module process it ran

    @property
    def recap(self) -> dict[str, int]:
        m = _RECAP.search(self.output)
        assert m, f"no PLAY RECAP for localhost in:\n{self.output[-3000:]}"
        return dict(
            zip(("ok", "changed", "unreachable", "failed"), map(int, m.groups()), strict=True)
        )


@dataclass
class Cloud:
    """The moto endpoint, the environment the playbooks run in, and boto3 clients on it."""

    endpoint: str
    env: dict[str, str]
    key_dir: Path
    outputs: list[str] = field(default_factory=list)

    def client(self, service: str):
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def playbook(self, name: str, *args: str, timeout: int = 900) -> Run:
        cmd = [
            str(BIN / "ansible-playbook"),
            "-i",
            str(REPO / "inventory/aws"),
            str(REPO / "playbooks" / name),
            "-e",
            f"aws_compute_key_dir={self.key_dir}",
            *args,
        ]
        t0 = time.monotonic()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(
            cmd,
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        run = Run(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0, cpu)
        self.outputs.append(run.output)
        return run

    def reset(self) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        opener.open(req, timeout=10).close()


@pytest.fixture(scope="module")
def cloud(_moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Cloud:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PALPITE_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION=REGION,
        AWS_ENDPOINT_URL=_moto_endpoint,
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        PALPITE_PROJECT=PROJECT,
        PALPITE_ENVIRONMENT=ENVIRONMENT,
        NO_PROXY="127.0.0.1,localhost",
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_DEPRECATION_WARNINGS="false",
    )
    # Every module run is a new Python process: let them reuse compiled bytecode.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    key_dir = tmp_path_factory.mktemp("keys") / "secrets"
    c = Cloud(endpoint=_moto_endpoint, env=env, key_dir=key_dir)
    c.reset()
    return c
