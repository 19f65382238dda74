"""Signatures over published archives' `.sha256` (ml.artifact_sign), against moto: publish
signs a bundle's archive, `sign-artifact` an app release or a Python archive, and
`sign-published` (the migration) everything whose checksum matches."""

import hashlib
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from ml.artifact_sign import published_artifacts, sign_all_published, sign_published
from ml.cli import main
from ml.errors import PalpiteError
from ml.publish import publish_bundle
from ml.signing import (
    SignatureError,
    generate_key,
    load_public_key,
    load_signer,
)
from ml.signing_core import verify_signed_manifest

BUCKET = "palpite-artifact-sign"


@pytest.fixture
def s3(moto_server: str) -> Any:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def key(tmp_path: Path) -> Path:
    generate_key(tmp_path / "signing.key")
    return tmp_path / "signing.key"


def _get(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def _put_archive(s3: Any, key: str, body: bytes, bare: bool = False) -> None:
    digest = hashlib.sha256(body).hexdigest()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    line = f"{digest}\n" if bare else f"{digest}  {key.rsplit('/', 1)[-1]}\n"
    s3.put_object(Bucket=BUCKET, Key=key + ".sha256", Body=line.encode())


def _verify(s3: Any, key: str, kind: str, public: Path) -> str:
    sha, _key = verify_signed_manifest(
        _get(s3, key + ".sha256"), _get(s3, key + ".sha256.sig"), [load_public_key(public)],
        kind=kind, file_name=key.rsplit("/", 1)[-1],
    )  # fmt: skip
    return sha


def test_a_signed_publish_signs_the_archive_manifest_hosts_verify(
    s3: Any, bundle: Path, key: Path
) -> None:
    published = publish_bundle(bundle, BUCKET, "team-a", signer=load_signer(key))
    public_id = load_public_key(Path(f"{key}.pub")).key_id
    assert published.archive_signed_by == public_id
    assert _verify(s3, published.key, "model-bundle", Path(f"{key}.pub")) == published.sha256
    # Published unsigned first: publishing again with a key signs it (no new archive).
    s3.delete_object(Bucket=BUCKET, Key=published.key + ".sha256.sig")
    assert publish_bundle(bundle, BUCKET, "team-a").archive_signed_by is None
    again = publish_bundle(bundle, BUCKET, "team-a", signer=load_signer(key))
    assert (again.status, again.archive_signed_by) == ("already published", public_id)


def test_sign_artifact_checks_the_checksum_first(s3: Any, key: Path, tmp_path: Path) -> None:
    archive = "env/releases/app/1.0-abc/palpite-app-1.0-abc.tar.gz"
    _put_archive(s3, archive, b"the app\n")
    assert main(["sign-artifact", "releases/app/1.0-abc/palpite-app-1.0-abc.tar.gz",
                 "--kind", "app-release", "--bucket", BUCKET, "--prefix", "env",
                 "--signing-key", str(key)]) == 0  # fmt: skip
    assert _verify(s3, archive, "app-release", Path(f"{key}.pub"))
    # The signature names the kind: it does not pass for another kind.
    with pytest.raises(SignatureError, match="the signature is for kind app-release"):
        _verify(s3, archive, "python-archive", Path(f"{key}.pub"))

    local = tmp_path / "local.tar.gz"
    local.write_bytes(b"another app\n")
    with pytest.raises(PalpiteError, match=r"checksum mismatch .*; not signed"):
        sign_published(s3, BUCKET, archive, "app-release", load_signer(key), local)


def test_sign_published_signs_every_kind_and_refuses_a_damaged_one(
    s3: Any, key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = {
        "p/models/v1/v1.tar.gz": "model-bundle",
        "p/models/v2/v2.tar.gz": "model-bundle",
        "p/releases/app/1/palpite-app-1.tar.gz": "app-release",
        "p/python/debian-12-x86_64/cpython-3.12.1.tar.zst": "python-archive",
    }
    for name in good:
        _put_archive(s3, name, name.encode(), bare=name.endswith(".zst"))
    _put_archive(s3, "p/models/v3/v3.tar.gz", b"v3")
    s3.put_object(Bucket=BUCKET, Key="p/models/v3/v3.tar.gz", Body=b"v3, damaged")
    s3.put_object(Bucket=BUCKET, Key="p/models/production.json", Body=b"{}")
    _put_archive(s3, "other/models/v9/v9.tar.gz", b"another environment")
    assert sorted(published_artifacts(s3, BUCKET, "p")) == sorted(
        [*good.items(), ("p/models/v3/v3.tar.gz", "model-bundle")]
    )

    signed, refused = sign_all_published(s3, BUCKET, "p", load_signer(key))
    assert len(signed) == 4 and len(refused) == 1 and "v3.tar.gz: checksum mismatch" in refused[0]
    for name, kind in good.items():
        _verify(s3, name, kind, Path(f"{key}.pub"))

    assert main(["sign-published", "--bucket", BUCKET, "--prefix", "p",
                 "--signing-key", str(key)]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert "refused: model-bundle s3://palpite-artifact-sign/p/models/v3/v3.tar.gz" in err
    assert "1 artifact(s) not signed (above); 4 signed" in err
    assert json.loads(_get(s3, "p/models/v1/v1.tar.gz.sha256.sig"))["name"] == "v1.tar.gz"
