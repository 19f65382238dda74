"""Signature verification: the one copy, used by ml.signing and by the hosts' Ansible module.

Standard library and `cryptography` only, no other ml module beyond ml.errors when it is
there: the hosts run it with the OS's own Python and its `python3-cryptography` package,
before any app venv exists, as `ansible.module_utils.palpite_signing_core` (the file
plugins/module_utils/palpite_signing_core.py is a link to this one). docs/bundle.md
"Signing" is the contract; docs/trust.md says what it protects.
"""

# Hosts run this with their OS Python: Amazon Linux 2023 has 3.9 (annotations as strings).
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

try:  # In palpite's ml package, errors are PalpiteErrors (the CLI prints them on one line).
    from ml.errors import PalpiteError as _Base
except ImportError:  # On a host, inside the Ansible module: no ml package there.
    _Base = Exception  # type: ignore[misc,assignment]

ED25519 = "ed25519"
ECDSA_P256 = "ecdsa-p256-sha256"
KEY_ID_HEX = 16
SIGNATURE_FORMAT = 1
BUNDLE_KIND = "model-bundle"
KINDS = (BUNDLE_KIND, "app-release", "python-archive")
# The suffix of an artifact's signature beside its `.sha256` manifest in the bucket.
MANIFEST_SIGNATURE_SUFFIX = ".sig"
# The message signed is this line plus the compact, key-sorted JSON of these fields.
_DOMAIN = b"palpite-signature-v1\n"
_SIGNED_FIELDS = ("signature_format", "kind", "name", "manifest_sha256", "algorithm", "key_id")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_SIGNATURE_BYTES = 64 * 1024  # a real one is under 1 KiB
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


class VerifyError(_Base):
    """An artifact that must not be used; the message is one line."""


class SignatureError(VerifyError):
    """A missing, malformed, untrusted or invalid signature: do not use the artifact."""


class ChecksumError(VerifyError):
    """A signed manifest whose artifact does not match it."""


@dataclass(frozen=True)
class PublicKey:
    """A verification key with its key id (sha256 of its DER SubjectPublicKeyInfo)."""

    key: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
    key_id: str
    algorithm: str

    @classmethod
    def of(cls, key: Any, source: str) -> PublicKey:
        if isinstance(key, ed25519.Ed25519PublicKey):
            algorithm = ED25519
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            algorithm = ECDSA_P256
        else:
            raise VerifyError(f"{source}: unsupported key type (use Ed25519 or ECDSA P-256)")
        der = key.public_bytes(serialization.Encoding.DER, _SPKI)
        return cls(key, hashlib.sha256(der).hexdigest()[:KEY_ID_HEX], algorithm)

    def pem(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.PEM, _SPKI)

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            if isinstance(self.key, ed25519.Ed25519PublicKey):
                self.key.verify(signature, message)
            else:
                self.key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


def public_key_from_pem(data: bytes, source: str) -> PublicKey:
    """A PEM SubjectPublicKeyInfo (`openssl pkey -pubout`, keygen's `.pub`)."""
    if b"PRIVATE KEY-----" in data:
        raise VerifyError(f"{source} is a private key: pass its public key (the .pub file)")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise VerifyError(
            f"{source} is not a PEM public key (SubjectPublicKeyInfo, as `openssl pkey -pubout`"
            " writes)"
        ) from None
    return PublicKey.of(key, source)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def signed_message(document: Mapping[str, Any]) -> bytes:
    """The exact bytes a signature covers (docs/bundle.md)."""
    fields = {name: document[name] for name in _SIGNED_FIELDS}
    return _DOMAIN + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


class Fail(Protocol):
    def __call__(self, what: str) -> NoReturn: ...


def failer(artifact: str, trusted: Sequence[PublicKey]) -> Fail:
    """Raises SignatureError: one line naming the artifact, what failed, the trusted ids."""
    ids = ", ".join(key.key_id for key in trusted)

    def fail(what: str) -> NoReturn:
        expected = f"; trusted key ids: {ids}" if ids else ""
        raise SignatureError(f"{artifact}: signature check failed: {what}{expected}")

    return fail


def _parse_signature(raw: bytes, fail: Fail) -> tuple[dict[str, Any], bytes]:
    try:
        document = json.loads(raw)
        well_formed = (
            isinstance(document, dict)
            and document.get("signature_format") == SIGNATURE_FORMAT
            and all(isinstance(document.get(f), str) for f in (*_SIGNED_FIELDS[1:], "signature"))
            and bool(HEX64_RE.match(document["manifest_sha256"]))
        )
        signature = base64.b64decode(document["signature"], validate=True) if well_formed else b""
    except (ValueError, binascii.Error):
        well_formed = False
    if not well_formed:
        fail("malformed signature file (not signature_format 1 JSON)")
    return document, signature


def check_document(
    manifest: bytes,
    manifest_name: str,
    raw_signature: bytes | None,
    *,
    kind: str,
    name: str | None,
    fail: Fail,
    signature_name: str = "signature",
) -> tuple[dict[str, Any], bytes]:
    """The signature document, checked against the manifest's bytes without any key: right
    kind and name, made over these bytes. `raw_signature` None: unsigned."""
    if raw_signature is None:
        fail(f"unsigned (no {signature_name})")
    if len(raw_signature) > MAX_SIGNATURE_BYTES:
        fail(f"{signature_name} is larger than {MAX_SIGNATURE_BYTES} bytes")
    document, signature = _parse_signature(raw_signature, fail)
    if document["kind"] != kind:
        fail(f"the signature is for kind {document['kind']}, not {kind}")
    if name is not None and document["name"] != name:
        fail(f"the signature is for {document['name']}, not {name}")
    digest = sha256_bytes(manifest)
    if digest != document["manifest_sha256"]:
        fail(
            f"{manifest_name} changed after signing (sha256 {digest[:12]}…,"
            f" signed {document['manifest_sha256'][:12]}…)"
        )
    return document, signature


def verify_document(
    document: Mapping[str, Any], signature: bytes, trusted: Sequence[PublicKey], fail: Fail
) -> PublicKey:
    """The key id is trusted, with its algorithm, and the signature verifies with it."""
    key = next((k for k in trusted if k.key_id == document["key_id"]), None)
    if key is None:
        fail(f"signed by key {document['key_id']}, which is not trusted")
    if key.algorithm != document["algorithm"]:
        fail(f"algorithm {document['algorithm']} is not key {key.key_id}'s ({key.algorithm})")
    if not key.verify(signature, signed_message(document)):
        fail(f"the signature is not valid for key {key.key_id}")
    return key


def listed_sha256(manifest: bytes, file_name: str) -> str | None:
    """The sha256 for `file_name` in a `sha256sum` file; a lone bare digest also counts."""
    text = manifest.decode("utf-8", errors="replace")
    lines = [line.split() for line in text.splitlines() if line.strip()]
    for parts in lines:
        if len(parts) == 2 and parts[1].lstrip("*") == file_name:
            return parts[0].lower()
    if len(lines) == 1 and len(lines[0]) == 1:
        return lines[0][0].lower()
    return None


def verify_signed_manifest(
    manifest: bytes,
    raw_signature: bytes | None,
    trusted: Sequence[PublicKey],
    *,
    kind: str,
    file_name: str,
    artifact: str | None = None,
) -> tuple[str, PublicKey]:
    """An archive's `.sha256` manifest (its bytes) and signature: the signature (artifact
    name: the archive's file name) against the trusted keys, then the sha256 it lists for
    the file. Returns (sha256, key). Nothing of the archive itself is read."""
    artifact = artifact or f"{kind} {file_name}"
    fail = failer(artifact, trusted)
    if not trusted:
        fail("no trusted public key given")
    document, signature = check_document(
        manifest, f"{file_name}.sha256", raw_signature, kind=kind, name=file_name, fail=fail,
        signature_name=f"{file_name}.sha256{MANIFEST_SIGNATURE_SUFFIX}",
    )  # fmt: skip
    key = verify_document(document, signature, trusted, fail)
    expected = listed_sha256(manifest, file_name)
    if expected is None or not HEX64_RE.match(expected):
        raise ChecksumError(f"{artifact}: its signed manifest lists no sha256 for {file_name}")
    return expected, key


def check_file_sha256(actual: str, expected: str, artifact: str, key: PublicKey) -> None:
    if actual != expected:
        raise ChecksumError(
            f"{artifact}: signature valid (key {key.key_id}) but checksum mismatch:"
            f" manifest says {expected[:12]}…, file is {actual[:12]}…"
        )
