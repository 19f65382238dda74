"""A playbook that gave the fleet back (python_builder.yml's build, run by site.yml before
configure.yml) holds no run any more: configure.yml's journal, guarded by the run id, must
not start for a run that is over. ansible-playbook runs tasks/fleet_lock.yml on the
controller against a moto server, as site.yml does with the builder and no restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.unit.release.playbook_run import run_playbook

REPO = Path(__file__).resolve().parents[3]
BUCKET = "palpite-test-fleet"

PLAYBOOK = """
- name: Build, as python_builder.yml does (take the fleet, give it back)
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Take the fleet
      ansible.builtin.include_tasks: TASKS/fleet_lock.yml
      vars: {fleet_lock_step: take, fleet_operation: python-build, fleet_lock_target: x86_64}
    - name: Give it back
      ansible.builtin.include_tasks: TASKS/fleet_lock.yml
      vars: {fleet_lock_step: give_back}

- name: Start the journal, as configure.yml does when a restart took the fleet
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Decide whether this run may go on, and start its journal
      ansible.builtin.include_tasks: TASKS/fleet_lock.yml
      vars:
        fleet_lock_step: begin
        fleet_operation: restart
        release_target: {version: restart}
      when: fleet_run_id | default('') | length > 0
"""


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    ).create_bucket(Bucket=BUCKET)  # fmt: skip
    yield endpoint
    server.stop()


def test_a_run_that_gave_the_fleet_back_starts_no_journal(
    tmp_path: Path, moto_endpoint: str
) -> None:
    (tmp_path / "inventory.yml").write_text(
        "app:\n  hosts:\n    app-1: {ansible_connection: local}\n"
    )
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK.replace("TASKS", str(REPO / "playbooks" / "tasks")))
    aws = {
        "AWS_ENDPOINT_URL": moto_endpoint, "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    }  # fmt: skip
    extra = {
        "release_bucket": BUCKET,
        "artifact_key_prefix": "",
        "fleet_repo_dir": str(REPO),
        "release_ml_environment": aws,
    }
    rc, output = run_playbook(
        tmp_path, "app:\n  hosts:\n    app-1: {ansible_connection: local}\n", PLAYBOOK, extra
    )
    assert rc == 0, output[-2000:]
    assert "does not hold the fleet" not in output
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert "locks/fleet.json" not in keys  # given back, and not taken by the journal's start
