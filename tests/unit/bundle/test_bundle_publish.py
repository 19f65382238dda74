"""publish / presign / fetch against a real moto server (tests/conftest.py)."""

import argparse
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from bundle_helpers import vector_fields
from sklearn.linear_model import LogisticRegression

from ml.bucket import archive_key
from ml.bundle import QualityGateError, load_bundle, write_bundle
from ml.cli_bundle import add_fetch_parser, add_publish_parser
from ml.errors import PalpiteError
from ml.fetch import download_bundle, fetch_url, presign_bundle
from ml.publish import publish_bundle

BUCKET = "palpite-artifacts"
EditCard = Callable[[Path, Callable[[dict[str, Any]], None]], None]


@pytest.fixture
def s3(moto_server: str) -> Any:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def _keys(s3: Any) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_publish_round_trip(
    s3: Any, bundle: Path, tmp_path: Path, classifier: LogisticRegression
) -> None:
    published = publish_bundle(bundle, BUCKET, "team-a")
    version = bundle.name
    assert published.status == "uploaded"
    assert published.key == f"team-a/models/{version}/{version}.tar.gz"
    assert _keys(s3) == sorted(
        [published.key, published.key + ".sha256", f"team-a/models/{version}/model_card.json"]
    )
    sha_line = s3.get_object(Bucket=BUCKET, Key=published.key + ".sha256")["Body"].read()
    assert sha_line.decode() == f"{published.sha256}  {version}.tar.gz\n"
    card_copy = s3.get_object(Bucket=BUCKET, Key=f"team-a/models/{version}/model_card.json")
    assert card_copy["Body"].read() == (bundle / "model_card.json").read_bytes()

    fetched = download_bundle(version, tmp_path / "releases", BUCKET, "team-a")
    rows = np.eye(4)
    np.testing.assert_allclose(
        load_bundle(fetched).predict_proba({"features": rows}),
        load_bundle(bundle).predict_proba({"features": rows}),
    )

    again = publish_bundle(bundle, BUCKET, "team-a")
    assert again.status == "already published"
    assert again.sha256 == published.sha256


def test_a_signed_publish_reads_each_bundle_file_once(
    s3: Any, bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml.signing import generate_key, load_signer

    generate_key(tmp_path / "key")
    opened: list[str] = []
    real_open = Path.open

    def counting_open(path: Path, *args: Any, **kwargs: Any) -> Any:
        if path.is_relative_to(bundle):
            opened.append(path.relative_to(bundle).as_posix())
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", counting_open)
    publish_bundle(bundle, BUCKET, signer=load_signer(tmp_path / "key"))
    files = json.loads((bundle / "model_card.json").read_bytes())["files"]
    assert sorted(name for name in opened if name in files) == sorted(files)


def test_a_host_fetches_through_a_presigned_url_without_credentials(
    s3: Any, bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published = publish_bundle(bundle, BUCKET)
    presigned = presign_bundle(bundle.name, BUCKET, expires_in=60)
    assert presigned.sha256 == published.sha256
    assert "X-Amz-Signature=" in presigned.url
    # The host side: plain HTTP, no AWS settings at all.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    fetched = fetch_url(presigned.url, presigned.sha256, tmp_path / "releases", bundle.name)
    assert fetched == tmp_path / "releases" / bundle.name
    assert load_bundle(fetched).version == bundle.name


def test_fetch_url_refuses_a_wrong_sha256_and_reports_http_errors(
    s3: Any, bundle: Path, tmp_path: Path
) -> None:
    publish_bundle(bundle, BUCKET)
    presigned = presign_bundle(bundle.name, BUCKET)
    releases = tmp_path / "releases"
    # The signature (query string) stays out of the message.
    unsigned = re.escape(presigned.url.split("?")[0])
    with pytest.raises(PalpiteError, match=f"checksum mismatch for {unsigned}: expected"):
        fetch_url(presigned.url, "0" * 64, releases, bundle.name)
    assert list(releases.iterdir()) == []
    missing = presigned.url.replace(bundle.name + ".tar.gz", "absent.tar.gz")
    with pytest.raises(PalpiteError, match=r"download .*absent\.tar\.gz failed: HTTP 404"):
        fetch_url(missing, presigned.sha256, releases, bundle.name)


def test_fetch_cli_with_a_presigned_url(
    s3: Any, bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_bundle(bundle, BUCKET)
    presigned = presign_bundle(bundle.name, BUCKET)
    parser = argparse.ArgumentParser()
    add_fetch_parser(parser.add_subparsers(dest="command", required=True))
    argv = ["fetch", bundle.name, "--dest", str(tmp_path), "--url", presigned.url]
    args = parser.parse_args(argv)
    with pytest.raises(PalpiteError, match="needs --sha256"):
        args.func(args)
    args = parser.parse_args([*argv, "--sha256", presigned.sha256])
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / bundle.name)


def test_publish_refuses_a_model_failing_the_gate(
    s3: Any, tmp_path: Path, classifier: LogisticRegression
) -> None:
    useless = {"model": {"log_loss": 1.0}, "base_rate": {"log_loss": 1.0}}
    bad = write_bundle(tmp_path, classifier, vector_fields(metrics=useless))
    with pytest.raises(QualityGateError, match="not better than the base rate"):
        publish_bundle(bad, BUCKET)
    assert _keys(s3) == []


def test_unevaluated_bundles_need_allow_unevaluated(
    s3: Any, tmp_path: Path, classifier: LogisticRegression
) -> None:
    bare = write_bundle(tmp_path, classifier, vector_fields(metrics=None))
    with pytest.raises(QualityGateError, match="--allow-unevaluated"):
        publish_bundle(bare, BUCKET)
    assert _keys(s3) == []
    assert publish_bundle(bare, BUCKET, allow_unevaluated=True).status == "uploaded"


def test_a_published_version_is_immutable(s3: Any, bundle: Path, edit_card: EditCard) -> None:
    publish_bundle(bundle, BUCKET)
    edit_card(bundle, lambda card: card["extra"].update(note="changed after publishing"))
    with pytest.raises(PalpiteError, match=r"already published with archive sha256 .* immutable"):
        publish_bundle(bundle, BUCKET)


def test_fetch_refuses_a_tampered_archive_and_leaves_nothing(
    s3: Any, bundle: Path, tmp_path: Path
) -> None:
    publish_bundle(bundle, BUCKET)
    s3.put_object(Bucket=BUCKET, Key=archive_key("", bundle.name), Body=b"swapped")
    releases = tmp_path / "releases"
    with pytest.raises(PalpiteError, match="checksum mismatch for s3://"):
        download_bundle(bundle.name, releases, BUCKET)
    assert list(releases.iterdir()) == []


def test_unknown_versions_and_buckets_are_one_line_errors(s3: Any, tmp_path: Path) -> None:
    version = "20260101T000000Z-00000000"
    with pytest.raises(PalpiteError, match=f"version {version} is not published at s3://"):
        download_bundle(version, tmp_path, BUCKET)
    with pytest.raises(PalpiteError, match="is not published"):
        presign_bundle(version, BUCKET)
    with pytest.raises(PalpiteError, match=r"S3 read s3://no-such-bucket/.* failed: NoSuchBucket"):
        presign_bundle(version, "no-such-bucket")


def test_publish_cli_prints_json(
    s3: Any, bundle: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PALPITE_BUCKET", BUCKET)
    parser = argparse.ArgumentParser()
    add_publish_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["publish", str(bundle), "--prefix", "p/"])
    assert args.func(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["version"] == bundle.name
    assert printed["key"] == f"p/models/{bundle.name}/{bundle.name}.tar.gz"
    assert printed["key"] in _keys(s3)
