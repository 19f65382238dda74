"""Publish bundles to the S3 artifact bucket, and fetch them back by version.

Layout, under `s3://BUCKET/<prefix>models/<version>/`:
  <version>.tar.gz          the archive (reproducible; see ml.bundle.archive_bundle)
  model_card.json           a copy of the card, for tools that want metadata only
  signature.json            the bundle's signature over its card (ml.signing), if signed;
                            not in the archive, so signing later keeps the archive as it is
  <version>.tar.gz.sha256   "<hex>  <version>.tar.gz", written last: a version counts as
                            published only once this exists

Versions are immutable: publishing a different archive under an existing version is
refused. The endpoint and credentials come from the standard AWS settings (for example
AWS_ENDPOINT_URL), so the same code talks to moto.
"""

import argparse
import base64
import contextlib
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.archive import unpack_archive, write_archive
from ml.card import CARD_FILE, SIGNATURE_FILE, read_card
from ml.errors import PalpiteError
from ml.fileio import sha256_file
from ml.gate import DEFAULT_MIN_GAIN, check_quality_gate
from ml.s3 import s3_client

if TYPE_CHECKING:
    from ml.signing import Signer


@dataclass(frozen=True)
class Published:
    version: str
    bucket: str
    key: str
    sha256: str
    status: str  # "uploaded" or "already published"
    signed_by: str | None = None  # key id of the uploaded signature.json, None if unsigned


@dataclass(frozen=True)
class PresignedBundle:
    version: str
    url: str
    sha256: str
    expires_in: int


def version_prefix(prefix: str, version: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/models/{version}/" if prefix else f"models/{version}/"


def archive_key(prefix: str, version: str) -> str:
    return f"{version_prefix(prefix, version)}{version}.tar.gz"


@contextlib.contextmanager
def _s3_errors(action: str, bucket: str, key: str) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        raise PalpiteError(f"S3 {action} s3://{bucket}/{key} failed: {code}") from None
    except BotoCoreError as exc:
        raise PalpiteError(f"S3 {action} s3://{bucket}/{key} failed: {exc}") from None


def _is_missing(exc: Any) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def published_sha256(version: str, bucket: str, prefix: str = "", s3: Any = None) -> str | None:
    """The sha256 of a published version's archive, or None if it is not published."""
    from botocore.exceptions import ClientError

    s3 = s3 or s3_client()
    key = archive_key(prefix, version) + ".sha256"
    with _s3_errors("read", bucket, key):
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise
    digest = body.decode(errors="replace").split()[0] if body.strip() else ""
    if len(digest) != 64:
        raise PalpiteError(f"s3://{bucket}/{key} does not hold a sha256")
    return digest


def publish_bundle(
    bundle_dir: Path,
    bucket: str,
    prefix: str = "",
    *,
    min_gain: float = DEFAULT_MIN_GAIN,
    allow_unevaluated: bool = False,
    signer: "Signer | None" = None,
    s3: Any = None,
) -> Published:
    """Gate, (sign,) archive and upload a bundle; publishing it again only (re)uploads its
    signature, so a version published unsigned can be signed later."""
    bundle_dir = Path(bundle_dir)
    card = read_card(bundle_dir)
    version = card["version"]
    key = archive_key(prefix, version)
    with tempfile.TemporaryDirectory(prefix="palpite-publish-") as tmp:
        # Archiving checks every file against the card as it reads it: one read per file.
        archive = write_archive(bundle_dir, card, Path(tmp))
        check_quality_gate(card["metrics"], min_gain, allow_unevaluated=allow_unevaluated)
        signature = None
        if signer is not None or (bundle_dir / SIGNATURE_FILE).exists():
            from ml.signing import publishable_signature  # Lazy: cryptography when signed.

            signature = publishable_signature(bundle_dir, card, signer)
        s3 = s3 or s3_client()
        digest = sha256_file(archive)
        existing = published_sha256(version, bucket, prefix, s3)
        if existing == digest:
            signed_by = _put_signature(s3, bucket, prefix, version, signature)
            return Published(version, bucket, key, digest, "already published", signed_by)
        if existing is not None:
            raise PalpiteError(
                f"version {version} is already published with archive sha256 {existing[:12]}…,"
                f" this bundle's is {digest[:12]}…; versions are immutable"
            )
        checksum = base64.b64encode(bytes.fromhex(digest)).decode()
        with _s3_errors("upload", bucket, key), archive.open("rb") as body:
            # S3 checks ChecksumSHA256 on arrival, so a damaged upload fails here.
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ChecksumSHA256=checksum,
                ContentType="application/gzip",
                Metadata={"sha256": digest},
            )
    card_key = version_prefix(prefix, version) + "model_card.json"
    with _s3_errors("upload", bucket, card_key):
        s3.put_object(
            Bucket=bucket,
            Key=card_key,
            Body=(bundle_dir / CARD_FILE).read_bytes(),
            ContentType="application/json",
        )
    signed_by = _put_signature(s3, bucket, prefix, version, signature)
    with _s3_errors("upload", bucket, key + ".sha256"):
        s3.put_object(
            Bucket=bucket,
            Key=key + ".sha256",
            Body=f"{digest}  {version}.tar.gz\n".encode(),
            ContentType="text/plain",
        )
    return Published(version, bucket, key, digest, "uploaded", signed_by)


def _put_signature(
    s3: Any, bucket: str, prefix: str, version: str, signature: bytes | None
) -> str | None:
    """Upload signature.json beside the card; returns its key id (None: nothing to upload)."""
    if signature is None:
        return None
    sig_key = version_prefix(prefix, version) + SIGNATURE_FILE
    with _s3_errors("upload", bucket, sig_key):
        s3.put_object(Bucket=bucket, Key=sig_key, Body=signature, ContentType="application/json")
    return str(json.loads(signature)["key_id"])


def _require_published(version: str, bucket: str, prefix: str, s3: Any) -> str:
    digest = published_sha256(version, bucket, prefix, s3)
    if digest is None:
        where = f"s3://{bucket}/{version_prefix(prefix, version)}"
        raise PalpiteError(f"version {version} is not published at {where}")
    return digest


def presign_bundle(
    version: str, bucket: str, prefix: str = "", *, expires_in: int = 3600, s3: Any = None
) -> PresignedBundle:
    """A presigned GET URL for a published version's archive, with the archive's sha256.

    Made on the controller, so hosts download with plain HTTP and no AWS credentials.
    Pass an `s3` client whose endpoint the hosts can reach (moto: the bridge address).
    """
    s3 = s3 or s3_client()
    digest = _require_published(version, bucket, prefix, s3)
    key = archive_key(prefix, version)
    with _s3_errors("presign", bucket, key):
        url = s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
        )
    return PresignedBundle(version, url, digest, expires_in)


def _save_verified(
    chunks: Iterator[bytes], digest: str, dest_root: Path, version: str, source: str
) -> Path:
    """Stream an archive to a temp file, check its sha256, unpack it; nothing left on failure."""
    dest_root = Path(dest_root)
    dest_root.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{version}-", suffix=".tar.gz", dir=dest_root)
    tmp = Path(tmp_name)
    try:
        hasher = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                hasher.update(chunk)
                out.write(chunk)
        if hasher.hexdigest() != digest:
            raise PalpiteError(
                f"checksum mismatch for {source}: expected {digest[:12]}…,"
                f" downloaded {hasher.hexdigest()[:12]}…"
            )
        return unpack_archive(tmp, dest_root, expected_version=version)
    finally:
        tmp.unlink(missing_ok=True)


def download_bundle(
    version: str, dest_root: Path, bucket: str, prefix: str = "", *, s3: Any = None
) -> Path:
    """Download a version, check the archive's and every file's sha256, unpack it.

    Returns `dest_root/<version>/`. No unpickling and no library checks: loading does those.
    """
    s3 = s3 or s3_client()
    digest = _require_published(version, bucket, prefix, s3)
    key = archive_key(prefix, version)
    with _s3_errors("download", bucket, key):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        chunks = iter(lambda: body.read(1 << 20), b"")
        return _save_verified(chunks, digest, dest_root, version, f"s3://{bucket}/{key}")


def fetch_url(url: str, sha256: str, dest_root: Path, version: str) -> Path:
    """The host side of a presigned URL: plain HTTP, no AWS credentials or boto3.

    Downloads, checks the archive's sha256 and every file's, unpacks to
    `dest_root/<version>/` and returns it.
    """
    import urllib.error
    import urllib.request

    if len(sha256) != 64:
        raise PalpiteError(f"--sha256 must be 64 hex digits, got {sha256!r}")
    shown = url.split("?", 1)[0]  # the query string carries the signature
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            chunks = iter(lambda: response.read(1 << 20), b"")
            return _save_verified(chunks, sha256.lower(), dest_root, version, shown)
    except urllib.error.HTTPError as exc:
        raise PalpiteError(f"download {shown} failed: HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise PalpiteError(f"download {shown} failed: {exc}") from None


# ---------------------------------------------------------------- CLI


def _location_args(parser: argparse.ArgumentParser) -> None:
    bucket = os.environ.get("PALPITE_BUCKET")
    parser.add_argument(
        "--bucket",
        default=bucket,
        required=bucket is None,
        help="artifact bucket (default: $PALPITE_BUCKET)",
    )
    parser.add_argument(
        "--prefix",
        default=os.environ.get("PALPITE_PREFIX", ""),
        help="key prefix before models/ (default: $PALPITE_PREFIX or none)",
    )


def run_publish(args: argparse.Namespace) -> int:
    signer = None
    if args.signing_key:
        from ml.signing import load_signer

        signer = load_signer(args.signing_key)
    result = publish_bundle(
        args.bundle,
        args.bucket,
        args.prefix,
        min_gain=args.min_gain,
        allow_unevaluated=args.allow_unevaluated,
        signer=signer,
    )
    signed = f", signed by key {result.signed_by}" if result.signed_by else ", unsigned"
    print(f"{result.status}: s3://{result.bucket}/{result.key}{signed}", file=sys.stderr)
    print(json.dumps(asdict(result)))
    return 0


def run_presign(args: argparse.Namespace) -> int:
    result = presign_bundle(args.version, args.bucket, args.prefix, expires_in=args.expires_in)
    print(json.dumps(asdict(result)))
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    if args.url:
        if not args.sha256:
            raise PalpiteError("fetch --url needs --sha256")
        path = fetch_url(args.url, args.sha256, args.dest, args.version)
    elif args.bucket:
        path = download_bundle(args.version, args.dest, args.bucket, args.prefix)
    else:
        raise PalpiteError("fetch needs --bucket (or $PALPITE_BUCKET), or --url and --sha256")
    print(f"fetched and verified {path.name}", file=sys.stderr)
    print(path)
    return 0


def add_publish_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "publish",
        help="upload a bundle to the artifact bucket (quality gate applies)",
        description="Upload a bundle to s3://BUCKET/<prefix>models/<version>/ after the"
        " quality gate; prints a JSON line with version, key and sha256.",
    )
    parser.add_argument("bundle", type=Path, help="bundle directory")
    _location_args(parser)
    parser.add_argument(
        "--min-gain",
        type=float,
        default=DEFAULT_MIN_GAIN,
        help="log loss the model must beat the base rate by (default: %(default)s)",
    )
    parser.add_argument(
        "--allow-unevaluated",
        action="store_true",
        help="publish a bundle without backtest metrics (from `package`)",
    )
    parser.add_argument(
        "--signing-key",
        metavar="KEY_FILE",
        help="sign the bundle first with this private key (PEM file, or kms:KEY_ID)",
    )
    parser.set_defaults(func=run_publish)
    return parser


def add_presign_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "presign",
        help="presigned GET URL and sha256 of a published bundle (JSON)",
    )
    parser.add_argument("version")
    _location_args(parser)
    parser.add_argument("--expires-in", type=int, default=3600, help="seconds (default: 3600)")
    parser.set_defaults(func=run_presign)
    return parser


def add_fetch_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "fetch",
        help="download a published bundle and verify its checksums",
        description="Download a bundle version from the bucket, or (on a host, without AWS"
        " credentials) from a presigned URL; verify it and unpack it to DEST/<version>/.",
    )
    parser.add_argument("version")
    parser.add_argument("--dest", type=Path, required=True, help="parent directory")
    parser.add_argument("--bucket", default=os.environ.get("PALPITE_BUCKET"))
    parser.add_argument("--prefix", default=os.environ.get("PALPITE_PREFIX", ""))
    parser.add_argument("--url", help="a presigned URL (from `presign`) instead of the bucket")
    parser.add_argument("--sha256", help="the archive's sha256, with --url")
    parser.set_defaults(func=run_fetch)
    return parser
