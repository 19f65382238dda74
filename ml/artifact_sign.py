"""Signatures over published artifacts: `<archive>.sha256.sig` beside each `.sha256`.

What hosts verify before they download anything (docs/trust.md): the signature over an
archive's `.sha256` manifest, named by the archive's file name and its kind. Model bundles
(`<prefix>models/`), app releases (`<prefix>releases/app/`) and the prebuilt Python
(`<prefix>python/`) are signed the same way, on the controller. `sign_all_published` is the
migration (`make sign-published`): it signs what the bucket holds once each archive's
checksum matches its manifest, trusting the bucket's content at that moment.
"""

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.bucket import is_missing, s3_errors
from ml.errors import PalpiteError
from ml.fileio import sha256_file
from ml.signing_core import (
    BUNDLE_KIND,
    MANIFEST_SIGNATURE_SUFFIX,
    VerifyError,
    listed_sha256,
    verify_signed_manifest,
)

if TYPE_CHECKING:
    from ml.signing import Signer

# The bucket's artifact kinds, by the key prefix under the environment's prefix.
KIND_PREFIXES = (
    ("models/", BUNDLE_KIND),
    ("releases/app/", "app-release"),
    ("python/", "python-archive"),
)


def signature_key(artifact_key: str) -> str:
    return f"{artifact_key}.sha256{MANIFEST_SIGNATURE_SUFFIX}"


def put_manifest_signature(
    s3: Any, bucket: str, artifact_key: str, manifest: bytes, signer: "Signer", kind: str
) -> str:
    """Sign `manifest` (the archive's `.sha256` bytes) and upload it; returns the key id."""
    from ml.signing import sign_manifest_bytes  # Lazy: cryptography only when signing.

    name = artifact_key.rsplit("/", 1)[-1]
    body = sign_manifest_bytes(manifest, signer, kind=kind, name=name)
    key = signature_key(artifact_key)
    with s3_errors("upload", bucket, key):
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return signer.public_key.key_id


def _read(s3: Any, bucket: str, key: str) -> bytes | None:
    from botocore.exceptions import ClientError

    with s3_errors("read", bucket, key):
        try:
            return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise


def _object_sha256(s3: Any, bucket: str, key: str) -> str:
    digest = hashlib.sha256()
    with s3_errors("read", bucket, key):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        for chunk in iter(lambda: body.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sign_published(
    s3: Any,
    bucket: str,
    artifact_key: str,
    kind: str,
    signer: "Signer",
    local_file: Path | None = None,
) -> tuple[str, bool]:
    """Check a published archive against its `.sha256` (the local copy when given, else the
    bucket's object), then sign the manifest as it is in the bucket, unless a valid signature
    by this key is there already. Returns the key id and whether a signature was uploaded."""
    where = f"{kind} s3://{bucket}/{artifact_key}"
    manifest = _read(s3, bucket, artifact_key + ".sha256")
    if manifest is None:
        raise PalpiteError(f"{where}: not published (no .sha256), nothing to sign")
    name = artifact_key.rsplit("/", 1)[-1]
    expected = listed_sha256(manifest, name)
    if expected is None or len(expected) != 64:
        raise PalpiteError(f"{where}: its .sha256 lists no sha256 for it; not signed")
    actual = sha256_file(local_file) if local_file else _object_sha256(s3, bucket, artifact_key)
    if actual != expected:
        raise PalpiteError(
            f"{where}: checksum mismatch (manifest says {expected[:12]}…, archive is"
            f" {actual[:12]}…); not signed"
        )
    if _signed_by(manifest, _read(s3, bucket, signature_key(artifact_key)), signer, kind, name):
        return signer.public_key.key_id, False
    return put_manifest_signature(s3, bucket, artifact_key, manifest, signer, kind), True


def _signed_by(
    manifest: bytes, signature: bytes | None, signer: "Signer", kind: str, name: str
) -> bool:
    if signature is None:
        return False
    try:
        verify_signed_manifest(manifest, signature, [signer.public_key], kind=kind, file_name=name)
    except VerifyError:
        return False
    return True


def published_artifacts(s3: Any, bucket: str, prefix: str = "") -> list[tuple[str, str]]:
    """(archive key, kind) of every archive with a `.sha256` under the kinds' prefixes."""
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    found = []
    for sub, kind in KIND_PREFIXES:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base + sub)
        with s3_errors("list", bucket, base + sub):
            keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        found += [(key.removesuffix(".sha256"), kind) for key in keys if key.endswith(".sha256")]
    return sorted(found)


def sign_all_published(
    s3: Any, bucket: str, prefix: str, signer: "Signer"
) -> tuple[list[str], list[str]]:
    """Sign every published archive whose checksum matches; (signed, refused: one line each).
    One signed by this key already is left as it is; by another key, it is signed again
    with this one (rotation: re-sign what you keep)."""
    signed, refused = [], []
    for key, kind in published_artifacts(s3, bucket, prefix):
        try:
            sign_published(s3, bucket, key, kind, signer)
            signed.append(f"{kind} s3://{bucket}/{key}")
        except PalpiteError as exc:
            refused.append(str(exc))
    return signed, refused
