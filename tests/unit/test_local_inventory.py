"""The local inventory plugin: aws_ec2 against moto, and nothing (no crash) while moto is
down and something else answers at its address."""

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "inventory"))

from palpite_local_ec2 import moto_answers  # noqa: E402


class _NotMoto(http.server.BaseHTTPRequestHandler):
    """Answers every request with an empty 404, as this machine's network gateway does."""

    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("content-length", "0")
        self.end_headers()

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def not_moto() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotMoto)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def inventory(endpoint: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    source = (REPO / "inventory" / "local" / "local_ec2.yml").read_text()
    source = "\n".join(
        f'endpoint_url: "{endpoint}"' if line.startswith("endpoint_url:") else line
        for line in source.splitlines()
    )
    (tmp_path / "local_ec2.yml").write_text(source)
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PYTHONFAULTHANDLER="1")
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(tmp_path), "--list"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_moto_answers_only_for_moto(moto_server: str, not_moto: str) -> None:
    assert moto_answers(moto_server)
    assert not moto_answers(not_moto)
    assert not moto_answers("http://127.0.0.1:1")


def test_nothing_and_no_crash_while_the_local_cloud_is_down(not_moto: str, tmp_path: Path) -> None:
    result = inventory(not_moto, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "the local cloud does not answer" in result.stderr
    assert "Fatal Python error" not in result.stderr
    assert json.loads(result.stdout)["_meta"]["hostvars"] == {}


def test_instances_of_the_local_cloud(moto_server: str, tmp_path: Path) -> None:
    ec2 = boto3.client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    for role, address in (("app", "10.231.0.3"), ("python-builder", "10.231.0.9")):
        tags = {"Project": "palpite", "Environment": "local", "Role": role,
                "palpite:local-address": address}  # fmt: skip
        ec2.run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[
                {"ResourceType": "instance",
                 "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ],
        )  # fmt: skip
    result = inventory(moto_server, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    listed = json.loads(result.stdout)
    [host] = listed["app"]["hosts"]
    # The throwaway Python builder (playbooks/python_builder.yml) in a group of its own, whose
    # name needs no "invalid characters" warning.
    assert len(listed["python_builder"]["hosts"]) == 1
    assert "Invalid characters" not in result.stderr
    address = listed["_meta"]["hostvars"][host]["ansible_host"]
    # ansible-inventory marks templated values as unsafe in its JSON.
    assert (address.get("__ansible_unsafe") if isinstance(address, dict) else address) == (
        "10.231.0.3"
    )
