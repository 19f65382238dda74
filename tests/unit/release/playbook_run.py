"""Run a playbook written by a test, with the repository's tasks, on the controller: the
one ansible-playbook call the release unit tests share, and the moto bucket's settings
(conftest.py's moto_endpoint serves it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
BUCKET = "palpite-test-fleet"


def s3_of(endpoint: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip


def fleet_vars(endpoint: str) -> dict[str, Any]:
    """What tasks/fleet_settle.yml sets, for the moto server at `endpoint`."""
    return {
        "release_bucket": BUCKET,
        "artifact_key_prefix": "",
        "fleet_repo_dir": str(REPO),
        "release_ml_environment": {
            "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        },
    }  # fmt: skip


def run_playbook(
    tmp_path: Path, inventory: str, playbook: str, extra: dict[str, Any]
) -> tuple[int, str]:
    """(exit code, output on one line); TASKS in `playbook` names playbooks/tasks."""
    (tmp_path / "inventory.yml").write_text(inventory)
    path = tmp_path / "play.yml"
    path.write_text(playbook.replace("TASKS", str(REPO / "playbooks" / "tasks")))
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_NOCOLOR": "1",
    }
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(tmp_path / "inventory.yml"), str(path),
         "-e", json.dumps(extra)],
        env=env, capture_output=True, text=True, timeout=120, check=False, cwd=REPO,
    )  # fmt: skip
    return result.returncode, " ".join((result.stdout + result.stderr).split())
