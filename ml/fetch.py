"""Fetch published bundles back by version: from the bucket, or from a presigned URL.

Every download is checked, the archive's sha256 and then every file's, as it is unpacked
to DEST/<version>/; nothing is unpickled (loading does that, with its own checks).
"""

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.archive import unpack_archive
from ml.bucket import archive_key, require_published, s3_errors
from ml.errors import PalpiteError
from ml.s3 import s3_client


@dataclass(frozen=True)
class PresignedBundle:
    version: str
    url: str
    sha256: str
    expires_in: int


def presign_bundle(
    version: str, bucket: str, prefix: str = "", *, expires_in: int = 3600, s3: Any = None
) -> PresignedBundle:
    """A presigned GET URL for a published version's archive, with the archive's sha256.

    Made on the controller, so hosts download with plain HTTP and no AWS credentials.
    Pass an `s3` client whose endpoint the hosts can reach (moto: the bridge address).
    """
    s3 = s3 or s3_client()
    digest = require_published(version, bucket, prefix, s3)
    key = archive_key(prefix, version)
    with s3_errors("presign", bucket, key):
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
    digest = require_published(version, bucket, prefix, s3)
    key = archive_key(prefix, version)
    with s3_errors("download", bucket, key):
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
