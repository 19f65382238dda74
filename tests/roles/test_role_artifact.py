"""The artifact role: the one way a host fetches from the bucket (model bundles, app
releases, the prebuilt Python), against a real moto server on loopback, on localhost (as
the controller and as the host: trust.yml installs the host's trusted keys in a temporary
directory).

It checks the signature over the artifact's `.sha256` on the controller (locate) and on the
host against the host's own trusted keys (download), before anything is downloaded, then
downloads through a presigned URL with the signed sha256, and never prints the URL (a
credential for its lifetime), also when it fails, also at -vvv.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from ml.signing import generate_key, load_signer, sign_manifest_bytes

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BUCKET = "palpite-artifact-role-test"
KEY = "team-a/models/v1/v1.tar.gz"
BODY = b"an artifact\n" * 100
CHECK = "TASK [artifact : Check with {} the signature of s3://{}/{}"
CONTROLLER_CHECK = CHECK.format("the controller's trusted keys", BUCKET, KEY)
HOST_CHECK = CHECK.format("this host's trusted keys", BUCKET, KEY)

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: artifact
        tasks_from: trust
      when: install_trust | bool
    - ansible.builtin.include_role:
        name: artifact
        tasks_from: locate
    - ansible.builtin.include_role:
        name: artifact
        tasks_from: download
      when: artifact_located.found | bool
    - ansible.builtin.copy:
        content: "{{ artifact_located | dict2items | selectattr('key', 'in', ['found', 'sha256',
                      'name', 'key_id', 'kind', 'file_name']) | items2dict | to_json }}"
        dest: "{{ result_file }}"
        mode: "0644"
"""


def _manifest(body: bytes, key: str = KEY) -> bytes:
    return f"{hashlib.sha256(body).hexdigest()}  {key.rsplit('/', 1)[-1]}\n".encode()


@pytest.fixture
def signing_key(tmp_path: Path) -> Path:
    generate_key(tmp_path / "signing.key")
    return tmp_path / "signing.key"


@pytest.fixture
def bucket(moto_server: str, signing_key: Path):
    s3 = boto3.client("s3", endpoint_url=moto_server)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=BODY)
    signature = sign_manifest_bytes(
        _manifest(BODY), load_signer(signing_key), kind="model-bundle", name="v1.tar.gz"
    )
    s3.put_object(Bucket=BUCKET, Key=f"{KEY}.sha256.sig", Body=signature)
    s3.put_object(Bucket=BUCKET, Key=f"{KEY}.sha256", Body=_manifest(BODY))
    # The "host"'s trusted keys, as trust.yml installs them (the first test runs it).
    (signing_key.parent / "trusted-keys").mkdir()
    (signing_key.parent / "trusted-keys" / "signing.pem").write_bytes(
        Path(f"{signing_key}.pub").read_bytes()
    )
    return s3


def fetch(
    tmp_path: Path, endpoint: str, playbook: str = "play.yml", **variables: object
) -> subprocess.CompletedProcess[str]:
    if playbook == "play.yml":
        (tmp_path / "play.yml").write_text(PLAYBOOK)
    extra = {
        "artifact_bucket": BUCKET,
        "artifact_key": KEY,
        "artifact_kind": "model-bundle",
        "artifact_s3_endpoint_url": endpoint,
        "artifact_aws_region": "us-east-1",
        "artifact_dest": str(tmp_path / "artifact.tar.gz"),
        "artifact_signing_key": str(tmp_path / "signing.key"),
        "artifact_trusted_keys_dir": str(tmp_path / "trusted-keys"),
        "install_trust": False,
        "result_file": str(tmp_path / "result.json"),
        "ansible_python_interpreter": sys.executable,
        **variables,
    }
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", "-vvv", str(tmp_path / playbook),
         "-e", json.dumps(extra)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def assert_no_url(run: subprocess.CompletedProcess[str]) -> None:
    output = run.stdout + run.stderr
    assert "X-Amz-Signature" not in output and "Signature=" not in output


def failed_task(run: subprocess.CompletedProcess[str]) -> str:
    """The last task's name before the failure, and the failure's message."""
    out = " ".join(run.stdout.split())
    return out[out.rfind("TASK [") : out.find("PLAY RECAP")]


def test_downloads_a_signed_artifact_without_printing_its_url(
    tmp_path, bucket, moto_server, signing_key
):
    run = fetch(tmp_path, moto_server, install_trust=True)
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / "artifact.tar.gz").read_bytes() == BODY
    key_id = load_signer(signing_key).public_key.key_id
    assert json.loads((tmp_path / "result.json").read_text()) == {
        "found": True,
        "sha256": hashlib.sha256(BODY).hexdigest(),
        "name": f"s3://{BUCKET}/{KEY}",
        "kind": "model-bundle",
        "file_name": "v1.tar.gz",
        "key_id": key_id,
    }
    # trust.yml installed exactly the signing key's public half on the "host".
    installed = list((tmp_path / "trusted-keys").iterdir())
    assert [p.read_bytes() for p in installed] == [Path(f"{signing_key}.pub").read_bytes()]
    assert_no_url(run)


def test_without_its_own_region_and_endpoint_the_role_takes_the_inventorys(
    tmp_path, bucket, moto_server, monkeypatch
):
    # As release.yml calls it: only aws_module_defaults says where S3 is (no AWS_ENDPOINT_URL
    # in the environment). An omitted option is not filled from a play's module_defaults, so
    # the role must settle it itself.
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    run = fetch(
        tmp_path,
        moto_server,
        install_trust=True,
        artifact_s3_endpoint_url="",
        artifact_aws_region="",
        aws_module_defaults={"region": "us-east-1", "endpoint_url": moto_server},
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / "artifact.tar.gz").read_bytes() == BODY
    assert json.loads((tmp_path / "result.json").read_text())["found"] is True


def test_the_controller_refuses_an_unsigned_or_rehashed_artifact_before_any_download(
    tmp_path, bucket, moto_server, signing_key
):
    key_id = load_signer(signing_key).public_key.key_id
    tampered = BODY + b"evil"
    bucket.put_object(Bucket=BUCKET, Key=KEY, Body=tampered)  # re-hashed consistently
    bucket.put_object(Bucket=BUCKET, Key=f"{KEY}.sha256", Body=_manifest(tampered))
    run = fetch(tmp_path, moto_server)
    assert run.returncode != 0
    failure = failed_task(run)
    assert failure.startswith(CONTROLLER_CHECK), failure
    assert (
        f"s3://{BUCKET}/{KEY}: signature check failed: v1.tar.gz.sha256 changed after signing"
    ) in failure and f"trusted key ids: {key_id}" in failure
    assert not (tmp_path / "artifact.tar.gz").exists()

    bucket.delete_object(Bucket=BUCKET, Key=f"{KEY}.sha256.sig")
    run = fetch(tmp_path, moto_server)
    assert run.returncode != 0
    assert "signature check failed: unsigned (no v1.tar.gz.sha256.sig)" in failed_task(run)
    assert not (tmp_path / "artifact.tar.gz").exists()
    assert_no_url(run)


def test_the_host_refuses_a_signature_its_own_keys_do_not_trust(
    tmp_path, bucket, moto_server, signing_key
):
    # The controller trusts the signing key; this host was configured with another one only.
    generate_key(tmp_path / "other.key")
    (tmp_path / "trusted-keys" / "signing.pem").unlink()
    (tmp_path / "trusted-keys" / "other.pem").write_bytes(
        Path(tmp_path / "other.key.pub").read_bytes()
    )
    run = fetch(tmp_path, moto_server)
    assert run.returncode != 0
    failure = failed_task(run)
    assert failure.startswith(HOST_CHECK), failure
    signed_by = load_signer(signing_key).public_key.key_id
    other = load_signer(tmp_path / "other.key").public_key.key_id
    assert f"signed by key {signed_by}, which is not trusted; trusted key ids: {other}" in failure
    assert not (tmp_path / "artifact.tar.gz").exists()


def test_a_checksum_mismatch_fails_saying_what_and_leaves_no_file(tmp_path, bucket, moto_server):
    bucket.put_object(Bucket=BUCKET, Key=KEY, Body=BODY + b"tampered")
    run = fetch(tmp_path, moto_server)
    assert run.returncode != 0
    assert f"Downloading s3://{BUCKET}/{KEY} failed" in " ".join(run.stdout.split())
    assert not (tmp_path / "artifact.tar.gz").exists()
    assert_no_url(run)


def test_an_expected_checksum_must_be_the_signed_one(tmp_path, bucket, moto_server):
    run = fetch(tmp_path, moto_server, artifact_sha256="0" * 64)
    assert run.returncode != 0
    assert f"is not the expected {'0' * 64}" in " ".join(run.stdout.split())
    assert not (tmp_path / "artifact.tar.gz").exists()


def test_a_missing_artifact_fails_unless_missing_is_ok(tmp_path, bucket, moto_server):
    run = fetch(tmp_path, moto_server, artifact_key="team-a/models/v2/v2.tar.gz")
    assert run.returncode != 0
    run = fetch(
        tmp_path, moto_server, artifact_key="team-a/python/x.tar.zst", artifact_missing_ok=True,
        artifact_kind="python-archive",
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:]
    assert json.loads((tmp_path / "result.json").read_text())["found"] is False


SIGN_PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.include_role: {name: artifact, tasks_from: sign}
    - ansible.builtin.set_fact: {first_signed: "{{ artifact_signed is changed }}"}
    - ansible.builtin.include_role: {name: artifact, tasks_from: sign}
    - ansible.builtin.include_role: {name: artifact, tasks_from: trust}
    - ansible.builtin.include_role: {name: artifact, tasks_from: locate}
    - ansible.builtin.include_role: {name: artifact, tasks_from: download}
    - ansible.builtin.copy:
        content: "{{ {'first': first_signed, 'again': artifact_signed is changed,
                      'key_id': artifact_located.key_id} | to_json }}"
        dest: "{{ result_file }}"
        mode: "0644"
"""


def test_sign_makes_the_key_once_and_signs_an_upload_hosts_then_accept(tmp_path, moto_server):
    s3 = boto3.client("s3", endpoint_url=moto_server)
    s3.create_bucket(Bucket=BUCKET)
    key = "releases/app/1.0-abc/palpite-app-1.0-abc.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=BODY)
    s3.put_object(Bucket=BUCKET, Key=f"{key}.sha256", Body=_manifest(BODY, key))
    (tmp_path / "sign.yml").write_text(SIGN_PLAYBOOK)
    signing_key = tmp_path / "checkout" / ".signing" / "signing.key"
    run = fetch(
        tmp_path, moto_server, artifact_key=key, artifact_kind="app-release",
        artifact_signing_key=str(signing_key), playbook="sign.yml",
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:]
    assert signing_key.stat().st_mode & 0o777 == 0o600
    assert signing_key.parent.stat().st_mode & 0o777 == 0o700
    key_id = load_signer(signing_key).public_key.key_id
    result = json.loads((tmp_path / "result.json").read_text())
    assert result == {"first": True, "again": False, "key_id": key_id}
    assert (tmp_path / "artifact.tar.gz").read_bytes() == BODY
