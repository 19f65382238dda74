"""Detached signatures over artifact manifests (docs/bundle.md "Signing", docs/trust.md).

A manifest pins an artifact's content by sha256: a bundle's card (it lists every file's
sha256), a release's `.sha256` file. Its signature is a small JSON file beside it. The
signed message covers the manifest's sha256, the artifact's kind and name, the algorithm
and the key id, so a signature cannot be moved to another manifest, kind or version.
Keys: Ed25519 PEM files (exactly as `openssl genpkey -algorithm ed25519` writes them),
ECDSA P-256 PEM files, or an AWS KMS ECDSA P-256 key (`kms:<key id, ARN or alias>`).
"""

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ml.card import CARD_FILE, SIGNATURE_FILE, BundleError, read_card
from ml.checksums import check_files, verified_card
from ml.errors import PalpiteError
from ml.fileio import atomic_output, sha256_file
from ml.signing_core import (
    BUNDLE_KIND,
    KINDS,
    MANIFEST_SIGNATURE_SUFFIX,
    NAME_RE,
    SIGNATURE_FORMAT,
    ChecksumError,
    PublicKey,
    SignatureError,
    check_document,
    check_file_sha256,
    failer,
    signed_message,
    verify_document,
    verify_signed_manifest,
)
from ml.signing_keys import (
    KeyFileSigner,
    KmsSigner,
    Signer,
    generate_key,
    load_public_key,
    load_signer,
    load_trusted_keys,
)

# The verification core lives in ml.signing_core (the hosts run it too); keys in
# ml.signing_keys. These names are re-exported for callers of ml.signing.
__all__ = [
    "BUNDLE_KIND",
    "KINDS",
    "MANIFEST_SIGNATURE_SUFFIX",
    "ChecksumError",
    "KeyFileSigner",
    "KmsSigner",
    "PublicKey",
    "SignatureError",
    "Signer",
    "generate_key",
    "load_public_key",
    "load_signer",
    "load_trusted_keys",
    "publishable_signature",
    "read_signature",
    "sign_bundle",
    "sign_manifest",
    "sign_manifest_bytes",
    "signed_message",
    "verify_checksummed_file",
    "verify_manifest",
    "verify_signed_bundle",
]


# ---------------------------------------------------------------- manifests


def sign_manifest_bytes(manifest: bytes, signer: Signer, *, kind: str, name: str) -> bytes:
    """The signature JSON over `manifest`'s bytes as artifact `name` of `kind`."""
    if kind not in KINDS or not NAME_RE.match(name):
        raise PalpiteError(f"cannot sign {kind!r} {name!r}: unknown kind or unsafe name")
    public = signer.public_key
    document: dict[str, Any] = {
        "signature_format": SIGNATURE_FORMAT,
        "kind": kind,
        "name": name,
        "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
        "algorithm": public.algorithm,
        "key_id": public.key_id,
    }
    message = signed_message(document)
    signature = signer.sign(message)
    if not public.verify(signature, message):
        raise SignatureError(f"key {public.key_id} made a signature that does not verify")
    document["signature"] = base64.b64encode(signature).decode()
    return (json.dumps(document, indent=2) + "\n").encode()


def sign_manifest(
    manifest: Path, signature_path: Path, signer: Signer, *, kind: str, name: str
) -> dict[str, Any]:
    """Sign `manifest` as artifact `name` of `kind`; write the signature JSON, return it."""
    signature = sign_manifest_bytes(Path(manifest).read_bytes(), signer, kind=kind, name=name)
    with atomic_output(Path(signature_path)) as tmp:
        tmp.write_bytes(signature)
        tmp.chmod(0o644)
    return dict(json.loads(signature))


def _read(path: Path, fail: Any) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")


def _manifest_bytes(manifest: Path, fail: Any) -> bytes:
    content = _read(manifest, fail)
    if content is None:
        fail(f"cannot read {manifest}: No such file or directory")
    return content


def _checked_document(
    manifest: Path, signature_path: Path, kind: str, name: str | None, fail: Any
) -> tuple[dict[str, Any], bytes]:
    manifest, signature_path = Path(manifest), Path(signature_path)
    content, signature = _manifest_bytes(manifest, fail), _read(signature_path, fail)
    return check_document(
        content, manifest.name, signature, kind=kind, name=name, fail=fail,
        signature_name=signature_path.name,
    )  # fmt: skip


def read_signature(
    manifest: Path, signature_path: Path, *, kind: str, name: str | None, artifact: str
) -> dict[str, Any]:
    """The signature file, checked against the manifest without any key: right kind and
    name, and made over these manifest bytes. Publishing uses it to refuse a stale one."""
    return _checked_document(manifest, signature_path, kind, name, failer(artifact, []))[0]


def verify_manifest(
    manifest: Path,
    signature_path: Path,
    trusted: Sequence[PublicKey],
    *,
    kind: str,
    name: str | None = None,
    artifact: str | None = None,
) -> tuple[PublicKey, dict[str, Any]]:
    """Check `manifest`'s signature against any of the `trusted` keys (rotation: several).

    `name`, when given, must be the signed artifact name (the version asked for). Returns
    the key that signed and the signature document; raises SignatureError (one line naming
    the artifact, the trusted key ids and what failed).
    """
    fail = failer(artifact or str(manifest), trusted)
    if not trusted:
        fail("no trusted public key given")
    document, signature = _checked_document(manifest, signature_path, kind, name, fail)
    return verify_document(document, signature, trusted, fail), document


def verify_checksummed_file(
    artifact_file: Path,
    manifest: Path,
    signature_path: Path,
    trusted: Sequence[PublicKey],
    *,
    kind: str,
) -> PublicKey:
    """An archive with a signed `.sha256` manifest (app releases, prebuilt Python): the
    signature (artifact name: the file's name), then the file's sha256."""
    artifact_file = Path(artifact_file)
    name = artifact_file.name
    fail = failer(f"{kind} {name}", trusted)
    expected, key = verify_signed_manifest(
        _manifest_bytes(Path(manifest), fail), _read(Path(signature_path), fail), trusted,
        kind=kind, file_name=name,
    )  # fmt: skip
    check_file_sha256(sha256_file(artifact_file), expected, f"{kind} {name}", key)
    return key


# ---------------------------------------------------------------- model bundles


def sign_bundle(bundle_dir: Path, signer: Signer) -> dict[str, Any]:
    """Check a bundle's card and files, then write its `signature.json` over the card."""
    bundle_dir = Path(bundle_dir)
    return _sign_checked_bundle(bundle_dir, verified_card(bundle_dir), signer)


def _sign_checked_bundle(
    bundle_dir: Path, card: Mapping[str, Any], signer: Signer
) -> dict[str, Any]:
    return sign_manifest(
        bundle_dir / CARD_FILE,
        bundle_dir / SIGNATURE_FILE,
        signer,
        kind=BUNDLE_KIND,
        name=card["version"],
    )


def verify_signed_bundle(
    bundle_dir: Path, trusted: Sequence[PublicKey], expected_version: str | None = None
) -> tuple[dict[str, Any], PublicKey]:
    """The signature over the card first, then the card and every file's sha256.

    Nothing is unpickled. Returns the card and the key that signed it.
    """
    bundle_dir = Path(bundle_dir)
    artifact = f"bundle {bundle_dir}"
    if not (bundle_dir / CARD_FILE).is_file():
        raise BundleError(f"not a bundle: {bundle_dir} has no {CARD_FILE}")
    key, document = verify_manifest(
        bundle_dir / CARD_FILE,
        bundle_dir / SIGNATURE_FILE,
        trusted,
        kind=BUNDLE_KIND,
        name=expected_version,
        artifact=artifact,
    )
    try:
        card = read_card(bundle_dir)
        if card["version"] != document["name"]:
            raise BundleError(
                f"card version {card['version']} is not the signed {document['name']}"
            )
        check_files(bundle_dir, card)
    except BundleError as exc:
        raise BundleError(f"{artifact}: signature valid (key {key.key_id}) but {exc}") from None
    return card, key


def publishable_signature(
    bundle_dir: Path, card: Mapping[str, Any], signer: Signer | None = None
) -> bytes:
    """A bundle's signature.json to upload: made now with `signer`, else the one there,
    refused if it is not over this card and version (stale). No trusted key needed.

    `card` is the bundle's card with its files already checked (publish checks them while
    archiving), so they are not hashed again here."""
    bundle_dir = Path(bundle_dir)
    if signer is not None:
        _sign_checked_bundle(bundle_dir, card, signer)
    version = card["version"]
    path = bundle_dir / SIGNATURE_FILE
    read_signature(bundle_dir / CARD_FILE, path, kind=BUNDLE_KIND, name=version,
                   artifact=f"bundle {version}")  # fmt: skip
    return path.read_bytes()
