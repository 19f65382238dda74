"""Detached signatures over artifact manifests (docs/bundle.md "Signing", docs/trust.md).

A manifest pins an artifact's content by sha256: a bundle's card (it lists every file's
sha256), a release's `.sha256` file. Its signature is a small JSON file beside it. The
signed message covers the manifest's sha256, the artifact's kind and name, the algorithm
and the key id, so a signature cannot be moved to another manifest, kind or version.
Keys: Ed25519 PEM files (exactly as `openssl genpkey -algorithm ed25519` writes them),
ECDSA P-256 PEM files, or an AWS KMS ECDSA P-256 key (`kms:<key id, ARN or alias>`).
"""

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, Protocol

from ml.card import CARD_FILE, SIGNATURE_FILE, BundleError, read_card
from ml.checksums import check_files, verified_card
from ml.errors import PalpiteError
from ml.fileio import atomic_output, sha256_file
from ml.signing_keys import (
    KeyFileSigner,
    KmsSigner,
    PublicKey,
    Signer,
    generate_key,
    load_public_key,
    load_signer,
    load_trusted_keys,
)

# Keys live in ml.signing_keys; these names are re-exported for callers of ml.signing.
__all__ = [
    "BUNDLE_KIND",
    "KINDS",
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
    "signed_message",
    "verify_checksummed_file",
    "verify_manifest",
    "verify_signed_bundle",
]

SIGNATURE_FORMAT = 1
BUNDLE_KIND = "model-bundle"
KINDS = (BUNDLE_KIND, "app-release", "python-archive")
# The message signed is this line plus the compact, key-sorted JSON of these fields.
_DOMAIN = b"palpite-signature-v1\n"
_SIGNED_FIELDS = ("signature_format", "kind", "name", "manifest_sha256", "algorithm", "key_id")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
_MAX_SIGNATURE_BYTES = 64 * 1024  # a real one is under 1 KiB


class SignatureError(PalpiteError):
    """A missing, malformed, untrusted or invalid signature: do not use the artifact."""


# ---------------------------------------------------------------- manifests


def signed_message(document: Mapping[str, Any]) -> bytes:
    """The exact bytes a signature covers (docs/bundle.md)."""
    fields = {name: document[name] for name in _SIGNED_FIELDS}
    return _DOMAIN + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def sign_manifest(
    manifest: Path, signature_path: Path, signer: Signer, *, kind: str, name: str
) -> dict[str, Any]:
    """Sign `manifest` as artifact `name` of `kind`; write the signature JSON, return it."""
    if kind not in KINDS or not _NAME_RE.match(name):
        raise PalpiteError(f"cannot sign {kind!r} {name!r}: unknown kind or unsafe name")
    public = signer.public_key
    document: dict[str, Any] = {
        "signature_format": SIGNATURE_FORMAT,
        "kind": kind,
        "name": name,
        "manifest_sha256": sha256_file(manifest),
        "algorithm": public.algorithm,
        "key_id": public.key_id,
    }
    message = signed_message(document)
    signature = signer.sign(message)
    if not public.verify(signature, message):
        raise SignatureError(f"key {public.key_id} made a signature that does not verify")
    document["signature"] = base64.b64encode(signature).decode()
    with atomic_output(Path(signature_path)) as tmp:
        tmp.write_text(json.dumps(document, indent=2) + "\n")
        tmp.chmod(0o644)
    return document


def _parse_signature(raw: bytes, fail: "_Fail") -> tuple[dict[str, Any], bytes]:
    try:
        document = json.loads(raw)
        well_formed = (
            isinstance(document, dict)
            and document.get("signature_format") == SIGNATURE_FORMAT
            and all(isinstance(document.get(f), str) for f in (*_SIGNED_FIELDS[1:], "signature"))
            and bool(_HEX64_RE.match(document["manifest_sha256"]))
        )
        signature = base64.b64decode(document["signature"], validate=True) if well_formed else b""
    except (ValueError, binascii.Error):
        well_formed = False
    if not well_formed:
        fail("malformed signature file (not signature_format 1 JSON)")
    return document, signature


class _Fail(Protocol):
    def __call__(self, what: str) -> NoReturn: ...


def read_signature(
    manifest: Path, signature_path: Path, *, kind: str, name: str | None, artifact: str
) -> dict[str, Any]:
    """The signature file, checked against the manifest without any key: right kind and
    name, and made over these manifest bytes. Publishing uses it to refuse a stale one."""
    return _check_document(manifest, Path(signature_path), kind, name, _failer(artifact, []))[0]


def _failer(artifact: str, trusted: Sequence[PublicKey]) -> "_Fail":
    ids = ", ".join(key.key_id for key in trusted)

    def fail(what: str) -> NoReturn:
        expected = f"; trusted key ids: {ids}" if ids else ""
        raise SignatureError(f"{artifact}: signature check failed: {what}{expected}")

    return fail


def _check_document(
    manifest: Path, signature_path: Path, kind: str, name: str | None, fail: "_Fail"
) -> tuple[dict[str, Any], bytes]:
    try:
        raw = signature_path.read_bytes()
    except FileNotFoundError:
        fail(f"unsigned (no {signature_path.name})")
    except OSError as exc:
        fail(f"cannot read {signature_path}: {exc.strerror or exc}")
    if len(raw) > _MAX_SIGNATURE_BYTES:
        fail(f"{signature_path.name} is larger than {_MAX_SIGNATURE_BYTES} bytes")
    document, signature = _parse_signature(raw, fail)
    if document["kind"] != kind:
        fail(f"the signature is for kind {document['kind']}, not {kind}")
    if name is not None and document["name"] != name:
        fail(f"the signature is for {document['name']}, not {name}")
    try:
        digest = sha256_file(manifest)
    except OSError as exc:
        fail(f"cannot read {manifest}: {exc.strerror or exc}")
    if digest != document["manifest_sha256"]:
        fail(
            f"{Path(manifest).name} changed after signing (sha256 {digest[:12]}…,"
            f" signed {document['manifest_sha256'][:12]}…)"
        )
    return document, signature


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
    fail = _failer(artifact or str(manifest), trusted)
    if not trusted:
        fail("no trusted public key given")
    document, signature = _check_document(Path(manifest), Path(signature_path), kind, name, fail)
    key = next((k for k in trusted if k.key_id == document["key_id"]), None)
    if key is None:
        fail(f"signed by key {document['key_id']}, which is not trusted")
    if key.algorithm != document["algorithm"]:
        fail(f"algorithm {document['algorithm']} is not key {key.key_id}'s ({key.algorithm})")
    if not key.verify(signature, signed_message(document)):
        fail(f"the signature is not valid for key {key.key_id}")
    return key, document


def _listed_sha256(manifest: Path, file_name: str) -> str | None:
    """The sha256 for `file_name` in a `sha256sum` file; a lone bare digest also counts."""
    lines = [line.split() for line in Path(manifest).read_text().splitlines() if line.strip()]
    for parts in lines:
        if len(parts) == 2 and parts[1].lstrip("*") == file_name:
            return parts[0].lower()
    if len(lines) == 1 and len(lines[0]) == 1:
        return lines[0][0].lower()
    return None


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
    key, _ = verify_manifest(
        manifest, signature_path, trusted, kind=kind, name=name, artifact=f"{kind} {name}"
    )
    expected = _listed_sha256(manifest, name)
    if expected is None or not _HEX64_RE.match(expected):
        raise PalpiteError(f"{kind} {name}: signed manifest {manifest} lists no sha256 for it")
    actual = sha256_file(artifact_file)
    if actual != expected:
        raise PalpiteError(
            f"{kind} {name}: signature valid (key {key.key_id}) but checksum mismatch:"
            f" manifest says {expected[:12]}…, file is {actual[:12]}…"
        )
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
