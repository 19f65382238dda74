"""The artifact role: the one way a host fetches from the bucket (model bundles, app
releases, the prebuilt Python), against a real moto server on loopback, on localhost.

It finds the published sha256, downloads through a presigned URL with that checksum, and
never prints the URL (a credential for its lifetime), also when it fails, also at -vvv.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BUCKET = "palpite-artifact-role-test"
KEY = "team-a/models/v1/v1.tar.gz"
BODY = b"an artifact\n" * 100

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: artifact
        tasks_from: locate
    - ansible.builtin.include_role:
        name: artifact
        tasks_from: download
      when: artifact_located.found | bool
    - ansible.builtin.copy:
        content: "{{ artifact_located | dict2items | rejectattr('key', '==', 'url')
                      | items2dict | to_json }}"
        dest: "{{ result_file }}"
        mode: "0644"
"""


@pytest.fixture
def bucket(moto_server: str):
    s3 = boto3.client("s3", endpoint_url=moto_server)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=BODY)
    s3.put_object(Bucket=BUCKET, Key=f"{KEY}.sha256", Body=f"{hashlib.sha256(BODY).hexdigest()}\n")
    return s3


def fetch(tmp_path: Path, endpoint: str, **variables: object) -> subprocess.CompletedProcess[str]:
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    extra = {
        "artifact_bucket": BUCKET,
        "artifact_key": KEY,
        "artifact_s3_endpoint_url": endpoint,
        "artifact_aws_region": "us-east-1",
        "artifact_dest": str(tmp_path / "artifact.tar.gz"),
        "result_file": str(tmp_path / "result.json"),
        "ansible_python_interpreter": sys.executable,
        **variables,
    }
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", "-vvv", str(tmp_path / "play.yml"),
         "-e", json.dumps(extra)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def assert_no_url(run: subprocess.CompletedProcess[str]) -> None:
    output = run.stdout + run.stderr
    assert "X-Amz-Signature" not in output and "Signature=" not in output


def test_downloads_the_published_artifact_without_printing_its_url(tmp_path, bucket, moto_server):
    run = fetch(tmp_path, moto_server)
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / "artifact.tar.gz").read_bytes() == BODY
    assert json.loads((tmp_path / "result.json").read_text()) == {
        "found": True,
        "sha256": hashlib.sha256(BODY).hexdigest(),
        "name": f"s3://{BUCKET}/{KEY}",
    }
    assert_no_url(run)


def test_a_checksum_mismatch_fails_saying_what_and_leaves_no_file(tmp_path, bucket, moto_server):
    bucket.put_object(Bucket=BUCKET, Key=KEY, Body=BODY + b"tampered")
    run = fetch(tmp_path, moto_server)
    assert run.returncode != 0
    assert f"Downloading s3://{BUCKET}/{KEY} failed" in " ".join(run.stdout.split())
    assert not (tmp_path / "artifact.tar.gz").exists()
    assert_no_url(run)


def test_an_expected_checksum_must_be_the_published_one(tmp_path, bucket, moto_server):
    run = fetch(tmp_path, moto_server, artifact_sha256="0" * 64)
    assert run.returncode != 0
    assert f"is not the expected {'0' * 64}" in " ".join(run.stdout.split())
    assert not (tmp_path / "artifact.tar.gz").exists()


def test_a_missing_artifact_fails_unless_missing_is_ok(tmp_path, bucket, moto_server):
    run = fetch(tmp_path, moto_server, artifact_key="team-a/models/v2/v2.tar.gz")
    assert run.returncode != 0
    run = fetch(
        tmp_path, moto_server, artifact_key="team-a/python/x.tar.zst", artifact_missing_ok=True
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert json.loads((tmp_path / "result.json").read_text())["found"] is False
