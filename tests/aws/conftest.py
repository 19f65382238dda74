"""Run the provisioning playbooks against a moto server that enforces IAM.

Unlike the shared `moto_server` fixture (tests/conftest.py), this module starts its own
moto_server process with INITIAL_NO_AUTH_ACTION_COUNT set, so that every request must be
signed by an IAM user and allowed by its policies: the playbooks run as an "operator" user
holding inventory/aws/operator-policy.json, which proves that policy grants every action
provision and teardown need. The tests inspect the result as an "admin" user.

moto's IAM enforcement has two gaps the operator policy is adapted to (see
`_as_moto_evaluates`): it checks every non-S3 action against the resource "*" (so
resource-scoped statements are widened to "*": their scoping is NOT tested here), and it
names HeadBucket's permission s3:HeadBucket where AWS uses s3:ListBucket.
"""

import copy
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest

from tests.local_server import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROJECT = "palpite"
ENVIRONMENT = "test"
PREFIX = f"{PROJECT}-{ENVIRONMENT}"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account
SSH_CIDR = "203.0.113.7/32"
OPERATOR_POLICY = REPO / "inventory/aws/operator-policy.json"

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
    """The moto endpoint, the operator's environment for the playbooks, admin clients."""

    endpoint: str
    env: dict[str, str]
    key_dir: Path
    admin: dict[str, str]
    outputs: list[str] = field(default_factory=list)

    def client(self, service: str):
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint, **self.admin)

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


def _as_moto_evaluates(policy: dict) -> dict:
    policy = copy.deepcopy(policy)
    for statement in policy["Statement"]:
        resources = statement["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        if not all(r.startswith("arn:aws:s3:::") for r in resources):
            statement["Resource"] = "*"
            statement.pop("Condition", None)
        elif "s3:ListBucket" in statement["Action"]:
            statement["Action"] = [*statement["Action"], "s3:HeadBucket"]
    return policy


def _keys(iam, user: str, policy: dict) -> dict[str, str]:
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName=user, PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {
        "aws_access_key_id": key["AccessKeyId"],
        "aws_secret_access_key": key["SecretAccessKey"],
    }


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # The first three calls (creating the admin user) go unchecked; every later one is
    # authenticated and authorized.
    server_env["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            env=server_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for _ in range(150):
            try:
                opener.open(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, log.read_text()
                time.sleep(0.2)
        bootstrap = boto3.client(
            "iam",
            region_name=REGION,
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        everything = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
        admin = _keys(bootstrap, "admin", everything)
        admin_iam = boto3.client("iam", region_name=REGION, endpoint_url=endpoint, **admin)
        operator_policy = _as_moto_evaluates(json.loads(OPERATOR_POLICY.read_text()))
        operator = _keys(admin_iam, "operator", operator_policy)

        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PALPITE_"))}
        env.update(
            AWS_ACCESS_KEY_ID=operator["aws_access_key_id"],
            AWS_SECRET_ACCESS_KEY=operator["aws_secret_access_key"],
            AWS_REGION=REGION,
            AWS_ENDPOINT_URL=endpoint,
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
        yield Cloud(endpoint=endpoint, env=env, key_dir=key_dir, admin=admin)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
