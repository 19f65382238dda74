"""Publish a bundle to the artifact bucket (the layout: ml.bucket).

Versions are immutable: publishing a different archive under an existing version is
refused. The endpoint and credentials come from the standard AWS settings (for example
AWS_ENDPOINT_URL), so the same code talks to moto.
"""

import base64
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.archive import write_archive
from ml.artifact_sign import put_manifest_signature, sign_published
from ml.bucket import archive_key, published_sha256, s3_errors, version_prefix
from ml.card import CARD_FILE, SIGNATURE_FILE, read_card
from ml.errors import PalpiteError
from ml.fileio import sha256_file
from ml.gate import DEFAULT_MIN_GAIN, check_quality_gate
from ml.s3 import s3_client
from ml.signing_core import BUNDLE_KIND

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
    # key id of the uploaded signature over the archive's .sha256 (what hosts verify)
    archive_signed_by: str | None = None


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
    signatures, so a version published unsigned can be signed later. With a signer, the
    archive's `.sha256` is signed too (`<archive>.sha256.sig`, ml.artifact_sign): that is
    what hosts verify before they download it."""
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
            archive_signed_by = (
                sign_published(s3, bucket, key, BUNDLE_KIND, signer, local_file=archive)[0]
                if signer is not None
                else None
            )
            return Published(
                version, bucket, key, digest, "already published", signed_by, archive_signed_by
            )
        if existing is not None:
            raise PalpiteError(
                f"version {version} is already published with archive sha256 {existing[:12]}…,"
                f" this bundle's is {digest[:12]}…; versions are immutable"
            )
        checksum = base64.b64encode(bytes.fromhex(digest)).decode()
        with s3_errors("upload", bucket, key), archive.open("rb") as body:
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
    with s3_errors("upload", bucket, card_key):
        s3.put_object(
            Bucket=bucket,
            Key=card_key,
            Body=(bundle_dir / CARD_FILE).read_bytes(),
            ContentType="application/json",
        )
    signed_by = _put_signature(s3, bucket, prefix, version, signature)
    manifest = f"{digest}  {version}.tar.gz\n".encode()
    # Its signature first: the .sha256, written last, marks the version complete.
    archive_signed_by = (
        put_manifest_signature(s3, bucket, key, manifest, signer, BUNDLE_KIND)
        if signer is not None
        else None
    )
    with s3_errors("upload", bucket, key + ".sha256"):
        s3.put_object(Bucket=bucket, Key=key + ".sha256", Body=manifest, ContentType="text/plain")
    return Published(version, bucket, key, digest, "uploaded", signed_by, archive_signed_by)


def _put_signature(
    s3: Any, bucket: str, prefix: str, version: str, signature: bytes | None
) -> str | None:
    """Upload signature.json beside the card; returns its key id (None: nothing to upload)."""
    if signature is None:
        return None
    sig_key = version_prefix(prefix, version) + SIGNATURE_FILE
    with s3_errors("upload", bucket, sig_key):
        s3.put_object(Bucket=bucket, Key=sig_key, Body=signature, ContentType="application/json")
    return str(json.loads(signature)["key_id"])
