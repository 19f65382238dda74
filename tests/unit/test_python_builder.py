"""The throwaway Python builder (playbooks/python_builder.yml) against a moto server on
loopback, on AWS's path (no local cloud), the whole playbook with one app "host" on the
controller itself (connection local: its facts give the platform the lookup uses):

- a missing package: a builder from an earlier run is terminated, one builder is launched
  with the app instance's AMI, type, subnet, security groups and key pair, no instance
  profile and the project's tags with Role=python-builder; it never answers (a made-up
  address), and it is terminated all the same, its pinned host key forgotten, and the run
  fails saying so;
- another run holding the fleet (building too): refused, its builder and lock untouched;
- the package in the bucket, signed: nothing is launched; a leftover builder is terminated
  when the fleet is free, left running while another run holds it.

And statically: app hosts publish no prebuilt Python unless python_builder_enabled is false;
the builder's run publishes. The build itself runs on testbed hosts: `make test-slow-builder`.
"""

import hashlib
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import boto3
import jinja2
import pytest
import yaml

from ml import fleet_lock
from ml.signing import generate_key, load_signer, sign_manifest_bytes

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TAGS = {"Project": "palpite", "Environment": "unit"}
BUCKET = "palpite-unit-artifacts"
VERSION = "3.12.4"

INVENTORY = """
app:
  hosts:
    app-1:
      ansible_connection: local
python_builder:
  hosts: {}
"""


def _tagged(role: str) -> list[dict]:
    tags = {**TAGS, "Role": role}
    return [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def _platform() -> str:
    """pyenv_prebuilt_platform of this machine (roles/pyenv/vars/main.yml), from os-release."""
    fields = dict(
        line.split("=", 1)
        for line in Path("/etc/os-release").read_text().splitlines()
        if "=" in line
    )
    version = fields.get("VERSION_ID", "").strip('"').split(".")[0]
    return f"{fields['ID'].strip(chr(34))}-{version}-{platform.machine()}"


@pytest.fixture
def cloud(moto_server: str, tmp_path: Path) -> dict:
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    ec2.create_key_pair(KeyName="palpite-unit-app")
    image = ec2.describe_images()["Images"][1]["ImageId"]
    [app] = ec2.run_instances(
        ImageId=image, InstanceType="t3.micro", KeyName="palpite-unit-app", SubnetId=subnet,
        SecurityGroupIds=[group], MinCount=1, MaxCount=1, TagSpecifications=_tagged("app"),
    )["Instances"]  # fmt: skip
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    generate_key(tmp_path / "signing.key")
    return {"ec2": ec2, "app": app, "subnet": subnet, "group": group, "image": image}


def _run(moto_server: str, tmp_path: Path) -> subprocess.CompletedProcess:
    (tmp_path / "inventory.yml").write_text(INVENTORY)
    module_defaults = {"region": "us-east-1", "endpoint_url": moto_server}
    extra = {
        "palpite_project": "palpite",
        "palpite_environment": "unit",
        "palpite_local_cloud": False,
        "python_builder_enabled": True,
        "python_builder_connect_timeout": 1,
        "aws_region": "us-east-1",
        "aws_endpoint_url": moto_server,
        "aws_module_defaults": module_defaults,
        "aws_artifacts_bucket": BUCKET,
        "artifact_key_prefix": "",
        "aws_compute_key_dir": str(tmp_path / "secrets"),
        "artifact_signing_key": str(tmp_path / "signing.key"),
        "pyenv_prebuilt_aws_region": "us-east-1",
        "pyenv_prebuilt_aws_endpoint_url": moto_server,
        "pyenv_python_version": VERSION,
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
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_TIMEOUT": "1",
    }
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(tmp_path / "inventory.yml"),
         str(REPO / "playbooks/python_builder.yml"), "-e", json.dumps(extra)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _a_builder_left_running(cloud: dict) -> dict:
    """A Python builder instance some other run launched (interrupted, or still building)."""
    [instance] = cloud["ec2"].run_instances(
        ImageId=cloud["image"], SubnetId=cloud["subnet"], MinCount=1, MaxCount=1,
        TagSpecifications=_tagged("python-builder"),
    )["Instances"]  # fmt: skip
    return instance


def _terminated_at(instance: dict) -> datetime:
    """When moto terminated the instance: "User initiated (YYYY-MM-DD HH:MM:SS UTC)"."""
    stamp = instance["StateTransitionReason"].split("(", 1)[1].removesuffix(" UTC)")
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def _instances(ec2, role: str) -> list[dict]:
    pages = ec2.describe_instances(Filters=[{"Name": "tag:Role", "Values": [role]}])
    return [i for r in pages["Reservations"] for i in r["Instances"]]


def test_a_missing_package_launches_a_copy_of_the_app_instance_and_terminates_it_unreachable(
    cloud: dict, moto_server: str, tmp_path: Path
) -> None:
    ec2 = cloud["ec2"]
    leftover = _a_builder_left_running(cloud)

    proc = _run(moto_server, tmp_path)
    out = proc.stdout[-6000:] + proc.stderr[-2000:]
    said = " ".join(proc.stdout.split())
    assert proc.returncode != 0, out
    assert f"cpython-{VERSION}.tar.zst; building it on a throwaway instance" in said, out
    assert "the builder is terminated, nothing was published" in said, out

    builders = {i["InstanceId"]: i for i in _instances(ec2, "python-builder")}
    assert set(builders) > {leftover["InstanceId"]}
    [builder] = [i for k, i in builders.items() if k != leftover["InstanceId"]]
    assert all(i["State"]["Name"] == "terminated" for i in builders.values()), builders
    # The leftover went first: terminated before the new builder was launched (to the
    # second; the end of the run, where the builder goes, is seconds later).
    assert _terminated_at(builders[leftover["InstanceId"]]) <= builder["LaunchTime"]
    assert _terminated_at(builder) > builder["LaunchTime"]
    assert f"building the prebuilt Python on {builder['InstanceId']} failed: Wait until" in said

    app = cloud["app"]
    tags = {t["Key"]: t["Value"] for t in builder["Tags"]}
    assert tags == {**TAGS, "Role": "python-builder", "Name": "palpite-unit-python-builder"}
    assert builder["ImageId"] == app["ImageId"] == cloud["image"]
    assert builder["InstanceType"] == "t3.micro"
    assert builder["SubnetId"] == cloud["subnet"]
    assert [g["GroupId"] for g in builder["SecurityGroups"]] == [cloud["group"]]
    assert builder["KeyName"] == "palpite-unit-app"
    assert "IamInstanceProfile" not in builder
    assert builder["MetadataOptions"]["HttpTokens"] == "required"

    # The app instance untouched, nothing published, the builder's pinned host key forgotten.
    [app_now] = _instances(ec2, "app")
    assert app_now["State"]["Name"] == "running"
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=BUCKET)
    known_hosts = tmp_path / "secrets" / "palpite-unit.known_hosts"
    assert builder["InstanceId"] not in (known_hosts.read_text() if known_hosts.exists() else "")


def test_a_build_while_another_run_holds_the_fleet_is_refused_and_touches_no_builder(
    cloud: dict, moto_server: str, tmp_path: Path
) -> None:
    """Another configure building meanwhile: its builder (the "leftover" here) is neither
    terminated nor joined by a second one, and its lock stays."""
    ec2 = cloud["ec2"]
    theirs = _a_builder_left_running(cloud)
    s3 = boto3.client("s3")
    held = fleet_lock.acquire(s3, BUCKET, "python-build", "cpython", holder="ci@other")

    proc = _run(moto_server, tmp_path)
    said = " ".join(proc.stdout.split())
    assert proc.returncode != 0, proc.stdout[-6000:]
    assert "python-build refused, the fleet is busy" in said, proc.stdout[-6000:]
    assert "ci@other" in said
    builders = _instances(ec2, "python-builder")
    assert [(i["InstanceId"], i["State"]["Name"]) for i in builders] == [
        (theirs["InstanceId"], "running")
    ]
    lock = fleet_lock.read_lock(s3, BUCKET)
    assert lock is not None and lock[0].run_id == held.run_id


def _publish_package(tmp_path: Path) -> None:
    key = f"python/{_platform()}/cpython-{VERSION}.tar.zst"
    body = b"a prebuilt CPython\n" * 10
    manifest = f"{hashlib.sha256(body).hexdigest()}\n".encode()
    signer = load_signer(tmp_path / "signing.key")
    signature = sign_manifest_bytes(
        manifest, signer, kind="python-archive", name=key.rsplit("/", 1)[-1]
    )
    s3 = boto3.client("s3")
    for suffix, data in (("", body), (".sha256.sig", signature), (".sha256", manifest)):
        s3.put_object(Bucket=BUCKET, Key=key + suffix, Body=data)


def test_a_published_package_launches_nothing(
    cloud: dict, moto_server: str, tmp_path: Path
) -> None:
    _publish_package(tmp_path)
    proc = _run(moto_server, tmp_path)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "building it on a throwaway instance" not in " ".join(proc.stdout.split())
    assert _instances(cloud["ec2"], "python-builder") == []


def test_a_leftover_is_left_while_another_run_holds_the_fleet_then_terminated(
    cloud: dict, moto_server: str, tmp_path: Path
) -> None:
    """With the package published, a leftover builder is terminated only under the fleet
    lock: left running (and the run passing) while another run holds the fleet."""
    _publish_package(tmp_path)
    ec2 = cloud["ec2"]
    leftover = _a_builder_left_running(cloud)
    s3 = boto3.client("s3")
    held = fleet_lock.acquire(s3, BUCKET, "release", "v1", holder="ci@other")

    proc = _run(moto_server, tmp_path)
    assert proc.returncode == 0, proc.stdout[-6000:]
    said = " ".join(proc.stdout.split())
    assert f"the Python builder(s) {leftover['InstanceId']} are left running" in said
    assert [i["State"]["Name"] for i in _instances(ec2, "python-builder")] == ["running"]

    assert fleet_lock.release(s3, BUCKET, held.run_id)
    proc = _run(moto_server, tmp_path)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert [i["State"]["Name"] for i in _instances(ec2, "python-builder")] == ["terminated"]
    assert fleet_lock.read_lock(s3, BUCKET) is None  # given back


def _vars_of(playbook: str, play_hosts: str) -> dict:
    plays = yaml.safe_load((REPO / "playbooks" / playbook).read_text())
    [play] = [
        p
        for p in plays
        if p.get("hosts") == play_hosts and "pyenv_prebuilt_publish" in p.get("vars", {})
    ]
    return play["vars"]


def test_app_hosts_publish_only_when_the_builder_is_off_and_the_builder_publishes() -> None:
    expression = _vars_of("configure.yml", "app")["pyenv_prebuilt_publish"]
    env = jinja2.Environment()
    env.filters["bool"] = lambda v: (
        v if isinstance(v, bool) else str(v).lower() in ("true", "1", "yes")
    )
    publish = env.compile_expression(expression.strip().removeprefix("{{").removesuffix("}}"))
    site = yaml.safe_load((REPO / "inventory/aws/group_vars/all/palpite.yml").read_text())
    assert site["python_builder_enabled"] is True  # both inventories (local links this file)
    assert publish(python_builder_enabled=True) is False
    assert publish(python_builder_enabled=False) is True
    assert _vars_of("python_builder.yml", "python_builder")["pyenv_prebuilt_publish"] is True
    # The role publishes nothing unless asked.
    defaults = yaml.safe_load((REPO / "roles/pyenv/defaults/main.yml").read_text())
    specs = yaml.safe_load((REPO / "roles/pyenv/meta/argument_specs.yml").read_text())
    assert defaults["pyenv_prebuilt_publish"] is False
    assert specs["argument_specs"]["main"]["options"]["pyenv_prebuilt_publish"]["default"] is False
