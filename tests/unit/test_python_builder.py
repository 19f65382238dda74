"""The throwaway Python builder's launch and termination (playbooks/tasks/python_builder_launch.yml,
python_builder_terminate.yml) against a moto server on loopback, on AWS's path (no local
cloud): the builder copies the app instance's launch settings, gets no instance profile,
its host key is pinned and then forgotten; it and a leftover are terminated (a re-run that
changes nothing: `make test-slow`). The build itself runs on testbed hosts (`make test-slow`)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TAGS = {"Project": "palpite", "Environment": "unit"}

PLAYBOOK = """
- name: Launch the builder, then terminate it and the leftover
  hosts: localhost
  connection: local
  gather_facts: false
  module_defaults:
    group/aws: "{{ aws_module_defaults }}"
  tasks:
    - name: Launch
      ansible.builtin.include_tasks: REPO/playbooks/tasks/python_builder_launch.yml
    - name: Record
      ansible.builtin.copy:
        content: "{{ python_builder_instance | to_json }}"
        dest: OUT/builder.json
        mode: "0644"
    - name: Terminate
      ansible.builtin.include_tasks: REPO/playbooks/tasks/python_builder_terminate.yml
"""


def _tagged(role: str) -> list[dict]:
    tags = {**TAGS, "Role": role}
    return [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def test_launch_copies_the_app_instance_and_termination_leaves_nothing(
    moto_server: str, tmp_path: Path
) -> None:
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    image = ec2.describe_images()["Images"][1]["ImageId"]
    run = {"MinCount": 1, "MaxCount": 1, "SubnetId": subnet, "SecurityGroupIds": [group]}
    [app] = ec2.run_instances(
        ImageId=image, InstanceType="t3.micro", TagSpecifications=_tagged("app"), **run
    )["Instances"]
    [leftover] = ec2.run_instances(
        ImageId=image, TagSpecifications=_tagged("python-builder"), **run
    )["Instances"]

    (tmp_path / "pb.yml").write_text(
        PLAYBOOK.replace("REPO", str(REPO)).replace("OUT", str(tmp_path))
    )
    extra = {
        "palpite_project": "palpite",
        "palpite_environment": "unit",
        "palpite_local_cloud": False,
        "aws_region": "us-east-1",
        "aws_endpoint_url": moto_server,
        "aws_module_defaults": {"region": "us-east-1", "endpoint_url": moto_server},
        "aws_compute_key_dir": str(tmp_path / "secrets"),
        "wait_for_ssh": False,
        # The inventory settings aws_compute's defaults refer to (the launch overrides them).
        "instance_count": 2,
        "instance_type": "t3.small",
        "ami_id": "",
        "ansible_python_interpreter": sys.executable,
    }
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_NOCOLOR": "1",
    }
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", str(tmp_path / "pb.yml"),
         "-e", json.dumps(extra)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]

    builder_id = json.loads((tmp_path / "builder.json").read_text())["id"]
    [builder] = ec2.describe_instances(InstanceIds=[builder_id])["Reservations"][0]["Instances"]
    tags = {t["Key"]: t["Value"] for t in builder["Tags"]}
    assert tags["Role"] == "python-builder" and tags["Environment"] == "unit"
    assert builder["ImageId"] == app["ImageId"]
    assert builder["InstanceType"] == "t3.micro"
    assert builder["SubnetId"] == subnet
    assert [g["GroupId"] for g in builder["SecurityGroups"]] == [group]
    assert "IamInstanceProfile" not in builder
    # The project's key pair (moto drops KeyName from a terminated instance's description).
    assert [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]] == ["palpite-unit"]

    # Both builders terminated, the app instance untouched, the builder's key forgotten.
    states = {
        i["InstanceId"]: i["State"]["Name"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
    }
    assert states[builder_id] == states[leftover["InstanceId"]] == "terminated"
    assert states[app["InstanceId"]] == "running"
    known_hosts = tmp_path / "secrets" / "palpite-unit.known_hosts"
    assert builder_id not in (known_hosts.read_text() if known_hosts.exists() else "")
