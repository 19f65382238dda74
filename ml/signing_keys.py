"""Signing keys: PEM key files, an AWS KMS key, key ids, and `keygen` (ml.signing uses them).

Private keys are unencrypted PKCS#8 PEM and public keys SubjectPublicKeyInfo PEM, exactly
as `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` write them. A key id is
the first 16 hex digits of the sha256 of the public key's DER SubjectPublicKeyInfo.
Algorithms: Ed25519 (key files), ECDSA P-256 with SHA-256 (key files, AWS KMS: moto's KMS
has no Ed25519).
"""

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ml.errors import PalpiteError
from ml.signing_core import ECDSA_P256, ED25519, KEY_ID_HEX, PublicKey, public_key_from_pem

__all__ = ["ECDSA_P256", "ED25519", "KEY_ID_HEX", "PublicKey", "generate_key", "load_signer"]

KMS_PREFIX = "kms:"

_PEM, _PKCS8 = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


def _read_key_file(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise PalpiteError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def load_public_key(path: Path) -> PublicKey:
    """A PEM SubjectPublicKeyInfo file (`openssl pkey -pubout`, keygen's `.pub`)."""
    return public_key_from_pem(_read_key_file(path, "public key"), str(path))


def load_trusted_keys(paths: Sequence[Path]) -> list[PublicKey]:
    keys = [load_public_key(path) for path in paths]
    if not keys:
        raise PalpiteError("no trusted public key given")
    return keys


class Signer(Protocol):
    """Signs messages; `public_key` is what verifiers must trust."""

    @property
    def public_key(self) -> PublicKey: ...

    def sign(self, message: bytes) -> bytes: ...


class KeyFileSigner:
    """An unencrypted PKCS#8 PEM private key file: Ed25519, or ECDSA P-256."""

    def __init__(self, path: Path) -> None:
        data = _read_key_file(path, "signing key")
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except TypeError:
            raise PalpiteError(f"{path} is encrypted: give an unencrypted key file") from None
        except (ValueError, UnsupportedAlgorithm):
            hint = " (that is a public key)" if b"PUBLIC KEY-----" in data else ""
            raise PalpiteError(
                f"{path} is not a PEM private key{hint}: expected PKCS#8, as"
                " `openssl genpkey -algorithm ed25519` writes"
            ) from None
        if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise PalpiteError(f"{path}: unsupported key type (use Ed25519 or ECDSA P-256)")
        self._key = key
        self._public = PublicKey.of(key.public_key(), str(path))

    @property
    def public_key(self) -> PublicKey:
        return self._public

    def sign(self, message: bytes) -> bytes:
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(message)
        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))


@contextlib.contextmanager
def _kms_errors(action: str, key: str) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        detail = error.get("Message") or error.get("Code", "?")
        raise PalpiteError(f"KMS {action} with key {key} failed: {detail}") from None
    except BotoCoreError as exc:
        raise PalpiteError(f"KMS {action} with key {key} failed: {exc}") from None


class KmsSigner:
    """An AWS KMS asymmetric key (KeySpec ECC_NIST_P256, ECDSA_SHA_256); the private key
    never leaves KMS. The signed message is small (under KMS's 4096-byte RAW limit)."""

    def __init__(self, key: str, kms: Any = None) -> None:
        if kms is None:
            import boto3  # Lazy: only the KMS signer needs boto3 here.

            kms = boto3.client("kms")
        self._kms, self._key = kms, key
        with _kms_errors("get-public-key", key):
            answer = kms.get_public_key(KeyId=key)
        # KeySpec; CustomerMasterKeySpec is its deprecated name (the only one moto sends).
        spec = answer.get("KeySpec") or answer.get("CustomerMasterKeySpec")
        if spec != "ECC_NIST_P256" or "ECDSA_SHA_256" not in answer.get("SigningAlgorithms", []):
            raise PalpiteError(
                f"KMS key {key} is {spec}: signing needs an ECC_NIST_P256 SIGN_VERIFY key"
                " (ECDSA_SHA_256)"
            )
        public = serialization.load_der_public_key(answer["PublicKey"])
        self._public = PublicKey.of(public, f"{KMS_PREFIX}{key}")

    @property
    def public_key(self) -> PublicKey:
        return self._public

    def sign(self, message: bytes) -> bytes:
        with _kms_errors("sign", self._key):
            answer = self._kms.sign(
                KeyId=self._key,
                Message=message,
                MessageType="RAW",
                SigningAlgorithm="ECDSA_SHA_256",
            )
        return bytes(answer["Signature"])


def load_signer(spec: str | Path) -> Signer:
    """`kms:<key id, ARN or alias/NAME>` for a KMS key, else a private key file."""
    text = str(spec)
    if text.startswith(KMS_PREFIX):
        return KmsSigner(text.removeprefix(KMS_PREFIX))
    return KeyFileSigner(Path(text))


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise PalpiteError(f"{path} exists: keygen never overwrites a key") from None
    except OSError as exc:
        raise PalpiteError(f"cannot write {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(fd, mode)  # whatever the umask
        handle.write(data)


def generate_key(out: Path) -> PublicKey:
    """A new Ed25519 key: `out` (PKCS#8 PEM, mode 0600) and `out.pub` (SPKI PEM)."""
    out = Path(out)
    pub = out.with_name(out.name + ".pub")
    for path in (out, pub):
        if path.exists() or path.is_symlink():
            raise PalpiteError(f"{path} exists: keygen never overwrites a key")
    key = ed25519.Ed25519PrivateKey.generate()
    public = PublicKey.of(key.public_key(), str(out))
    _write_new(out, key.private_bytes(_PEM, _PKCS8, serialization.NoEncryption()), 0o600)
    try:
        _write_new(pub, public.pem(), 0o644)
    except BaseException:
        out.unlink()
        raise
    return public
