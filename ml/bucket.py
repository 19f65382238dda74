"""The artifact bucket's model layout, and S3 errors as one-line PalpiteErrors.

ml.publish uploads bundles, ml.fetch presigns and downloads them.

Layout, under `s3://BUCKET/<prefix>models/<version>/`:
  <version>.tar.gz          the archive (reproducible; see ml.bundle.archive_bundle)
  model_card.json           a copy of the card, for tools that want metadata only
  signature.json            the bundle's signature over its card (ml.signing), if signed;
                            not in the archive, so signing later keeps the archive as it is
  <version>.tar.gz.sha256.sig  the signature over the .sha256 hosts check before they
                            download (ml.artifact_sign), if signed
  <version>.tar.gz.sha256   "<hex>  <version>.tar.gz", written last: a version counts as
                            published only once this exists

The endpoint and credentials come from the standard AWS settings (for example
AWS_ENDPOINT_URL), so the same code talks to moto.
"""

import contextlib
from collections.abc import Iterator
from typing import Any

from ml.errors import PalpiteError
from ml.s3 import s3_client


def version_prefix(prefix: str, version: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/models/{version}/" if prefix else f"models/{version}/"


def archive_key(prefix: str, version: str) -> str:
    return f"{version_prefix(prefix, version)}{version}.tar.gz"


@contextlib.contextmanager
def s3_errors(action: str, bucket: str, key: str) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        raise PalpiteError(f"S3 {action} s3://{bucket}/{key} failed: {code}") from None
    except BotoCoreError as exc:
        raise PalpiteError(f"S3 {action} s3://{bucket}/{key} failed: {exc}") from None


def is_missing(exc: Any) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def published_sha256(version: str, bucket: str, prefix: str = "", s3: Any = None) -> str | None:
    """The sha256 of a published version's archive, or None if it is not published."""
    from botocore.exceptions import ClientError

    s3 = s3 or s3_client()
    key = archive_key(prefix, version) + ".sha256"
    with s3_errors("read", bucket, key):
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
    digest = body.decode(errors="replace").split()[0] if body.strip() else ""
    if len(digest) != 64:
        raise PalpiteError(f"s3://{bucket}/{key} does not hold a sha256")
    return digest


def require_published(version: str, bucket: str, prefix: str, s3: Any) -> str:
    digest = published_sha256(version, bucket, prefix, s3)
    if digest is None:
        where = f"s3://{bucket}/{version_prefix(prefix, version)}"
        raise PalpiteError(f"version {version} is not published at {where}")
    return digest
