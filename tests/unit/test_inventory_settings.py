"""The settings a user sets reach every role, from one place, in both inventories.

The user-facing variables (docs/aws.md: instance_count, aws_region, ...) have their one
default in inventory/aws/group_vars/all/palpite.yml, which the local inventory reads too
(a link) before its own overrides; the roles' defaults refer to them. Here the real
inventory directories are copied, their dynamic host sources replaced by a static
localhost, and a playbook resolves each role's defaults against them: the defaults, and a
user's edit of the inventory, arrive in every role variable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ROLES = ["aws_preflight", "aws_network", "aws_artifacts", "aws_compute", "aws_loadbalancer"]

PLAYBOOK = """
- name: Resolve the roles' defaults against the inventory
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Read each role's defaults (as the role would see them)
      ansible.builtin.include_vars:
        file: "{{ item }}"
      loop: "{{ role_default_files }}"
    - name: Write the resolved values
      ansible.builtin.copy:
        content: "{{ lookup('ansible.builtin.vars', *names) | zip(names) | map('reverse')
                     | community.general.dict | to_json }}"
        dest: "{{ out }}"
        mode: "0644"
      vars:
        names: "{{ wanted }}"
"""

WANTED = [
    "instance_count",
    "aws_preflight_project",
    "aws_preflight_environment",
    "aws_preflight_region",
    "aws_preflight_instance_count",
    "aws_preflight_instance_type",
    "aws_preflight_ssh_allowed_cidrs",
    "aws_preflight_load_balancer_enabled",
    "aws_preflight_vpc_cidr",
    "aws_network_project",
    "aws_network_subnet_cidrs",
    "aws_network_https_enabled",
    "aws_artifacts_environment",
    "aws_artifacts_bucket_name",
    "aws_artifacts_require_tls",
    "aws_compute_instance_count",
    "aws_compute_instance_type",
    "aws_compute_lookup_options",
    "aws_compute_wait_for_ssh",
    "aws_loadbalancer_project",
    "aws_loadbalancer_environment",
    "aws_loadbalancer_certificate_arn",
    "model_api_aws_region",
    "pyenv_prebuilt_aws_region",
    "artifact_key_prefix",
    "model_api_artifact_prefix",
    "pyenv_prebuilt_prefix",
    "pointer_keys",
]


def _pointer_keys() -> dict[str, str]:
    """The production pointer's key as site.yml's first release looks for it and as a
    release writes it: the templates, read from the playbooks, resolved by the harness."""
    first = yaml.safe_load((REPO / "playbooks/first_release.yml").read_text())
    prepare = yaml.safe_load((REPO / "playbooks/tasks/release_prepare.yml").read_text())
    [pointer] = [
        t["ansible.builtin.set_fact"]["release_pointer_key"]
        for t in prepare
        if "release_pointer_key" in t.get("ansible.builtin.set_fact", {})
    ]
    return {
        "first_release": first[0]["vars"]["first_release_pointer"],
        "release": pointer,
    }


def resolve(tmp_path: Path, inventory: str, user_settings: str = "") -> dict:
    """The WANTED variables as the roles see them with a copy of inventory/<inventory>,
    optionally with `user_settings` appended to its group_vars/all/palpite.yml."""
    copy = tmp_path / "inventory"
    shutil.copytree(REPO / "inventory", copy, symlinks=True)  # keeps the local link
    source = copy / inventory
    for dynamic in ("aws_ec2.yml", "local_ec2.yml", "hosts.yml"):
        (source / dynamic).unlink(missing_ok=True)
    (source / "hosts.yml").write_text("all:\n  hosts:\n    localhost:\n")
    settings = source / "group_vars/all/palpite.yml"
    settings.write_text(settings.read_text() + user_settings)
    roles = [str(REPO / "roles" / role / "defaults/main.yml") for role in ROLES]
    if inventory == "local":
        roles.append(str(REPO / "roles/local_cloud/defaults/main.yml"))
    wanted = WANTED + (["local_cloud_instance_count"] if inventory == "local" else [])
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    out = tmp_path / "resolved.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PALPITE_"))}
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    extra = {
        "pointer_keys": _pointer_keys(),
        "role_default_files": roles,
        "wanted": wanted,
        "out": str(out),
        "ansible_python_interpreter": sys.executable,
    }
    playbook = [str(BIN / "ansible-playbook"), "-i", str(source), str(tmp_path / "play.yml")]
    proc = subprocess.run(
        [*playbook, "-e", json.dumps(extra)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_aws_defaults_come_from_the_one_settings_file(tmp_path: Path) -> None:
    got = resolve(tmp_path, "aws")
    assert got["aws_preflight_instance_count"] == got["aws_compute_instance_count"] == 2
    assert got["aws_preflight_region"] == got["model_api_aws_region"] == "us-east-1"
    assert got["aws_compute_lookup_options"] == {"region": "us-east-1"}
    assert got["aws_preflight_project"] == got["aws_loadbalancer_project"] == "palpite"
    assert got["aws_artifacts_environment"] == got["aws_loadbalancer_environment"] == "prod"
    assert got["aws_preflight_load_balancer_enabled"] is True
    assert got["aws_compute_wait_for_ssh"] is True
    assert got["aws_artifacts_require_tls"] is True
    assert got["aws_network_https_enabled"] is False
    assert got["aws_preflight_vpc_cidr"] == "10.40.0.0/16"
    assert got["aws_network_subnet_cidrs"] == ["10.40.1.0/24", "10.40.2.0/24"]


def test_a_users_settings_reach_every_role(tmp_path: Path) -> None:
    got = resolve(
        tmp_path,
        "aws",
        "instance_count: 1\naws_region: eu-west-1\ninstance_type: t4g.small\n"
        'ssh_allowed_cidrs: ["203.0.113.7/32"]\n'
        "alb_certificate_arn: arn:aws:acm:eu-west-1:123456789012:certificate/x\n",
    )
    assert got["aws_preflight_instance_count"] == got["aws_compute_instance_count"] == 1
    assert got["aws_preflight_load_balancer_enabled"] is False  # follows instance_count
    assert got["aws_preflight_region"] == "eu-west-1"
    assert got["model_api_aws_region"] == got["pyenv_prebuilt_aws_region"] == "eu-west-1"
    assert got["aws_compute_lookup_options"] == {"region": "eu-west-1"}
    assert got["aws_preflight_instance_type"] == got["aws_compute_instance_type"] == "t4g.small"
    assert got["aws_preflight_ssh_allowed_cidrs"] == ["203.0.113.7/32"]
    assert got["aws_network_https_enabled"] is True
    assert got["aws_loadbalancer_certificate_arn"].startswith("arn:aws:acm:eu-west-1:")


@pytest.mark.parametrize("user", ["", "instance_count: 3\n"], ids=["defaults", "user-edit"])
def test_the_local_inventory_overrides_only_what_differs(tmp_path: Path, user: str) -> None:
    got = resolve(tmp_path, "local", user)
    count = 3 if user else 2
    assert got["aws_compute_instance_count"] == got["local_cloud_instance_count"] == count
    assert got["aws_preflight_environment"] == got["aws_loadbalancer_environment"] == "local"
    assert got["aws_compute_lookup_options"]["endpoint_url"] == "http://10.231.0.1:4566"
    assert got["aws_compute_wait_for_ssh"] is False  # an emulated cloud
    assert got["aws_artifacts_require_tls"] is False  # moto is plain HTTP
    assert got["aws_preflight_ssh_allowed_cidrs"] == ["10.231.0.1/32"]
    assert got["aws_preflight_instance_type"] == "t3.small"  # from the AWS settings
    assert got["aws_preflight_load_balancer_enabled"] is (count > 1)


@pytest.mark.parametrize("prefix", ["team-a", "team-a/"])
def test_a_key_prefix_means_the_same_keys_everywhere(tmp_path: Path, prefix: str) -> None:
    """With or without its trailing slash: first_release.yml once concatenated a prefix
    without one and looked for another key than the release writes (a retrain per run)."""
    got = resolve(tmp_path, "aws", f"artifact_prefix: {prefix}\n")
    assert got["artifact_key_prefix"] == got["model_api_artifact_prefix"] == "team-a/"
    assert got["pyenv_prebuilt_prefix"] == "team-a/python"
    assert got["pointer_keys"] == {
        "first_release": "team-a/models/production.json",
        "release": "team-a/models/production.json",
    }
    assert resolve(tmp_path / "none", "aws")["pointer_keys"]["release"] == "models/production.json"


# Set in inventory/aws/group_vars/all/palpite.yml, which the local inventory reads too:
# a playbook that defaults one of them again keeps a second default that can drift
# (`default(omit, true)`, leaving an empty setting out of a module's arguments, is no default).
INVENTORY_SETTINGS = ("aws_region", "aws_module_defaults", "aws_endpoint_url", "palpite_project",
                      "palpite_environment", "artifact_bucket_name")  # fmt: skip


def test_playbooks_do_not_default_the_inventorys_settings_again() -> None:
    files = [REPO / "site.yml", *sorted((REPO / "playbooks").rglob("*.yml"))]
    repeats = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for name in INVENTORY_SETTINGS
        if f"{name} | default(" in line and f"{name} | default(omit" not in line
    ]
    assert repeats == []
