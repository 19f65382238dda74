"""ml.signing: keys, detached signatures over manifests, bundles, the CLI contract, KMS."""

import base64
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import joblib
import pytest
from bundle_helpers import make_data
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sklearn.linear_model import LogisticRegression

from ml.bundle import CARD_FILE, SIGNATURE_FILE, archive_bundle, load_bundle, verify_bundle
from ml.cli import main
from ml.errors import PalpiteError
from ml.publish import publish_bundle
from ml.signing import (
    KeyFileSigner,
    KmsSigner,
    SignatureError,
    generate_key,
    load_public_key,
    load_signer,
    sign_bundle,
    sign_manifest,
    signed_message,
    verify_checksummed_file,
    verify_manifest,
    verify_signed_bundle,
)

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="no openssl binary")
BUCKET = "palpite-artifacts"


@pytest.fixture
def keys(tmp_path: Path) -> Callable[[str], tuple[Path, Path]]:
    """keys("old") -> (private key file, public key file), made by generate_key."""

    def make(name: str) -> tuple[Path, Path]:
        out = tmp_path / "keys" / name
        out.parent.mkdir(exist_ok=True)
        generate_key(out)
        return out, out.with_name(name + ".pub")

    return make


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(err: str) -> str:
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def _spki_key_id(public_pem: bytes) -> str:
    der = serialization.load_pem_public_key(public_pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


def _rehash(bundle_dir: Path, change: Callable[[Path, dict[str, Any]], None]) -> Path:
    """Tamper like an attacker with bucket write: change files and/or card, then make the
    card's checksums and version consistent again and rename the directory to match."""
    card = json.loads((bundle_dir / CARD_FILE).read_text())
    change(bundle_dir, card)
    files = {
        p.relative_to(bundle_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(bundle_dir.rglob("*"))
        if p.is_file() and p.name not in (CARD_FILE, SIGNATURE_FILE)
    }
    text = "".join(f"{n}\0{d}\n" for n, d in sorted(files.items()))
    card["files"] = files
    stamp = card["version"].split("-")[0]
    card["version"] = f"{stamp}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    (bundle_dir / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    moved = bundle_dir.rename(bundle_dir.with_name(card["version"]))
    verify_bundle(moved)  # consistent: every checksum-only check passes
    return moved


def _new_model(bundle_dir: Path, card: dict[str, Any]) -> None:
    x, y = make_data(seed=1)
    joblib.dump(LogisticRegression(max_iter=200).fit(x, y), bundle_dir / "model.joblib")


def _new_labels(bundle_dir: Path, card: dict[str, Any]) -> None:
    card["class_labels"] = {c: f"pwned {c}" for c in card["classes"]}


def _new_version_only(bundle_dir: Path, card: dict[str, Any]) -> None:
    card["version"] = "20300101T000000Z-" + card["version"].split("-")[1]


# ---------------------------------------------------------------- keys


def test_keygen_writes_pem_files_with_a_key_id_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "signing.key"
    code, out, _ = _cli(["keygen", "--out", key], capsys)
    assert code == 0
    pub = tmp_path / "signing.key.pub"
    assert key.stat().st_mode & 0o777 == 0o600
    assert pub.stat().st_mode & 0o777 == 0o644
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert pub.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----\n")
    key_id = out.strip()
    assert len(key_id) == 16 and int(key_id, 16) >= 0 and key_id == key_id.lower()
    assert key_id == _spki_key_id(pub.read_bytes()) == load_public_key(pub).key_id
    before = key.read_bytes()
    code, _, err = _cli(["keygen", "--out", key], capsys)
    assert code == 1 and "never overwrites" in _one_line_error(err)
    assert key.read_bytes() == before


@needs_openssl
def test_keys_are_exactly_what_openssl_writes_and_reads(tmp_path: Path) -> None:
    def openssl(*args: str) -> bytes:
        return subprocess.run([OPENSSL, *args], check=True, capture_output=True).stdout

    ours = tmp_path / "ours.key"
    generate_key(ours)
    assert openssl("pkey", "-in", str(ours)) == ours.read_bytes()
    assert openssl("pkey", "-in", str(ours), "-pubout") == Path(f"{ours}.pub").read_bytes()
    theirs = tmp_path / "theirs.key"
    openssl("genpkey", "-algorithm", "ed25519", "-out", str(theirs))
    (tmp_path / "theirs.pub").write_bytes(openssl("pkey", "-in", str(theirs), "-pubout"))
    der = openssl("pkey", "-pubin", "-in", str(tmp_path / "theirs.pub"), "-outform", "DER")
    signer = KeyFileSigner(theirs)
    assert signer.public_key.key_id == hashlib.sha256(der).hexdigest()[:16]
    assert load_public_key(tmp_path / "theirs.pub").key_id == signer.public_key.key_id


@needs_openssl
def test_openssl_keys_sign_a_bundle_and_openssl_verifies_the_signature(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    subprocess.run([OPENSSL, "genpkey", "-algorithm", "ed25519", "-out", key], check=True)
    subprocess.run([OPENSSL, "pkey", "-in", key, "-pubout", "-out", pub], check=True)
    assert _cli(["sign", bundle, "--key", key], capsys)[0] == 0
    code, out, err = _cli(["verify", bundle, "--public-key", pub], capsys)
    assert (code, out.strip()) == (0, bundle.name) and "signature by key" in err
    # The signature is plain Ed25519 over signed_message(): openssl checks it too.
    document = json.loads((bundle / SIGNATURE_FILE).read_text())
    (tmp_path / "msg").write_bytes(signed_message(document))
    (tmp_path / "sig").write_bytes(base64.b64decode(document["signature"]))
    verify = [OPENSSL, "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin"]
    ok = subprocess.run([*verify, "-in", tmp_path / "msg", "-sigfile", tmp_path / "sig"])
    assert ok.returncode == 0
    (tmp_path / "msg").write_bytes(signed_message({**document, "name": "other"}))
    bad = subprocess.run([*verify, "-in", tmp_path / "msg", "-sigfile", tmp_path / "sig"])
    assert bad.returncode != 0


def test_ecdsa_p256_key_files_sign_and_verify(bundle: Path, tmp_path: Path) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key = tmp_path / "p256.pem"
    key.write_bytes(_pkcs8(private))
    signer = KeyFileSigner(key)
    assert signer.public_key.algorithm == "ecdsa-p256-sha256"
    assert sign_bundle(bundle, signer)["algorithm"] == "ecdsa-p256-sha256"
    assert verify_signed_bundle(bundle, [signer.public_key])[1] == signer.public_key


def _pkcs8(private: Any, encryption: Any = None) -> bytes:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        encryption or serialization.NoEncryption(),
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["sign", "{bundle}", "--key", "{tmp}/missing"], "cannot read signing key"),
        (["sign", "{bundle}", "--key", "{tmp}/garbage"], "is not a PEM private key"),
        (["sign", "{bundle}", "--key", "{pub}"], "(that is a public key)"),
        (["sign", "{bundle}", "--key", "{tmp}/rsa.pem"], "unsupported key type"),
        (["sign", "{bundle}", "--key", "{tmp}/encrypted.pem"], "is encrypted"),
        (["verify", "{bundle}", "--public-key", "{key}"], "is a private key"),
        (["verify", "{bundle}", "--public-key", "{tmp}/garbage"], "is not a PEM public key"),
        (["verify", "{bundle}", "--public-key", "{tmp}/missing"], "cannot read public key"),
        (["verify", "{tmp}", "--public-key", "{pub}"], "not a bundle"),
        (["verify", "{tmp}/nowhere", "--public-key", "{pub}"], "not a bundle"),
        (["sign", "{tmp}/nowhere", "--key", "{key}"], "not a bundle"),
        # train loads the key before reading any data: a bad key costs no training time.
        (["train", "--data", "{tmp}/none.csv", "--signing-key", "{pub}"], "public key"),
        (
            ["package", "--estimator", "{tmp}/e", "--schema", "{tmp}/s", "--signing-key", "{pub}"],
            "(that is a public key)",
        ),
    ],
)
def test_bad_input_is_one_line_error(
    argv: list[str],
    expected: str,
    bundle: Path,
    tmp_path: Path,
    keys: Callable[[str], tuple[Path, Path]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    key, pub = keys("k")
    (tmp_path / "garbage").write_text("not a key\n")
    if "rsa.pem" in argv[-1]:
        (tmp_path / "rsa.pem").write_bytes(_pkcs8(rsa.generate_private_key(65537, 2048)))
    if "encrypted.pem" in argv[-1]:
        encryption = serialization.BestAvailableEncryption(b"secret")
        (tmp_path / "encrypted.pem").write_bytes(_pkcs8(KeyFileSigner(key)._key, encryption))
    values = {"bundle": bundle, "tmp": tmp_path, "key": key, "pub": pub}
    code, _, err = _cli([a.format(**values) for a in argv], capsys)
    assert code == 1
    assert expected in _one_line_error(err)
    assert not (bundle / SIGNATURE_FILE).exists()


# ---------------------------------------------------------------- bundles


def test_sign_verify_round_trip_leaves_the_bundle_loadable_and_the_archive_unchanged(
    bundle: Path, keys: Callable[[str], tuple[Path, Path]], unpickle_calls: list[Any]
) -> None:
    key, pub = keys("k")
    unsigned_archive = archive_bundle(bundle, bundle.parent / "unsigned").read_bytes()
    document = sign_bundle(bundle, load_signer(key))
    assert document["kind"] == "model-bundle" and document["name"] == bundle.name
    assert (
        document["manifest_sha256"] == hashlib.sha256((bundle / CARD_FILE).read_bytes()).hexdigest()
    )
    assert json.loads((bundle / SIGNATURE_FILE).read_text()) == document
    assert (bundle / SIGNATURE_FILE).stat().st_mode & 0o777 == 0o644
    card, signed_by = verify_signed_bundle(bundle, [load_public_key(pub)], bundle.name)
    assert card["version"] == bundle.name and signed_by.key_id == document["key_id"]
    assert unpickle_calls == []  # verification never unpickles
    # signature.json is not a bundle file: checksums pass, the archive does not change.
    verify_bundle(bundle)
    assert archive_bundle(bundle, bundle.parent / "signed").read_bytes() == unsigned_archive


def test_a_signed_bundle_still_loads(
    bundle: Path, keys: Callable[[str], tuple[Path, Path]]
) -> None:
    sign_bundle(bundle, load_signer(keys("k")[0]))
    assert load_bundle(bundle).version == bundle.name


def test_the_asked_version_must_be_the_signed_one(
    bundle: Path, keys: Callable[[str], tuple[Path, Path]]
) -> None:
    key, pub = keys("k")
    sign_bundle(bundle, load_signer(key))
    with pytest.raises(SignatureError, match=r"the signature is for .*, not 20300101T"):
        verify_signed_bundle(bundle, [load_public_key(pub)], "20300101T000000Z-00000000")


Setup = Callable[[Path, Path, Path], Path]  # (bundle, trusted key, attacker key) -> bundle


def _signed_then(change: Callable[[Path, dict[str, Any]], None], resign: bool = False) -> Setup:
    def setup(bundle: Path, key: Path, attacker: Path) -> Path:
        sign_bundle(bundle, load_signer(key))
        bundle = _rehash(bundle, change)
        if resign:
            sign_bundle(bundle, load_signer(attacker))
        return bundle

    return setup


def _signed_by_attacker(bundle: Path, key: Path, attacker: Path) -> Path:
    sign_bundle(bundle, load_signer(attacker))
    return bundle


def _edit_signature(bundle: Path, key: Path, attacker: Path) -> Path:
    sign_bundle(bundle, load_signer(key))
    document = json.loads((bundle / SIGNATURE_FILE).read_text())
    (bundle / SIGNATURE_FILE).write_text(json.dumps({**document, "name": "x"}))
    return bundle


def _malformed_signature(bundle: Path, key: Path, attacker: Path) -> Path:
    (bundle / SIGNATURE_FILE).write_text('{"signature_format": 1}')
    return bundle


def _huge_signature(bundle: Path, key: Path, attacker: Path) -> Path:
    (bundle / SIGNATURE_FILE).write_text(" " * 70_000 + "{}")
    return bundle


def _app_release_signature(bundle: Path, key: Path, attacker: Path) -> Path:
    signer = load_signer(key)
    sign_manifest(
        bundle / CARD_FILE, bundle / SIGNATURE_FILE, signer, kind="app-release", name=bundle.name
    )
    return bundle


TAMPERING: dict[str, tuple[Setup, str]] = {
    "unsigned": (lambda b, k, a: b, r"unsigned \(no signature.json\)"),
    "signed by another key": (
        _signed_by_attacker,
        r"signed by key [0-9a-f]{16}, which is not trusted",
    ),
    "files changed, rehashed": (_signed_then(_new_model), "model_card.json changed after signing"),
    "card changed, rehashed": (_signed_then(_new_labels), "model_card.json changed after signing"),
    "version changed": (_signed_then(_new_version_only), "model_card.json changed after signing"),
    "rehashed and re-signed": (
        _signed_then(_new_model, resign=True),
        r"signed by key [0-9a-f]{16}, which is not trusted",
    ),
    "signature edited": (_edit_signature, r"the signature is not valid for key [0-9a-f]{16}"),
    "malformed signature": (_malformed_signature, "malformed signature file"),
    "huge signature file": (_huge_signature, "signature.json is larger than 65536 bytes"),
    "another kind's signature": (
        _app_release_signature,
        "the signature is for kind app-release, not model-bundle",
    ),
}


@pytest.mark.parametrize("case", TAMPERING)
def test_verify_refuses_with_one_line_naming_artifact_keys_and_failure(
    case: str,
    bundle: Path,
    keys: Callable[[str], tuple[Path, Path]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    (key, pub), (attacker, _) = keys("trusted"), keys("attacker")
    setup, reason = TAMPERING[case]
    bundle = setup(bundle, key, attacker)
    code, out, err = _cli(["verify", bundle, "--public-key", pub], capsys)
    assert code == 1 and out == ""
    line = _one_line_error(err)
    assert line.startswith(f"error: bundle {bundle}: signature check failed: ")
    assert f"; trusted key ids: {load_public_key(pub).key_id}\n" in line
    assert re.search(reason, line), line


def test_two_trusted_keys_allow_rotation(
    bundle: Path, keys: Callable[[str], tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    (old, old_pub), (new, new_pub) = keys("old"), keys("new")
    both = ["--public-key", old_pub, "--public-key", new_pub]
    sign_bundle(bundle, load_signer(old))
    assert _cli(["verify", bundle, *both], capsys)[0] == 0
    # Re-signed with the new key: hosts trusting both accept it before and after.
    assert _cli(["sign", bundle, "--key", new], capsys)[0] == 0
    code, _, err = _cli(["verify", bundle, *both], capsys)
    assert code == 0 and load_public_key(new_pub).key_id in err
    # Once the old key is retired, its signatures no longer count.
    sign_bundle(bundle, load_signer(old))
    code, _, err = _cli(["verify", bundle, "--public-key", new_pub], capsys)
    assert code == 1
    assert f"signed by key {load_public_key(old_pub).key_id}, which is not trusted" in err
    assert f"; trusted key ids: {load_public_key(new_pub).key_id}\n" in err


def test_checksums_are_checked_after_a_valid_signature(
    bundle: Path, keys: Callable[[str], tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    key, pub = keys("k")
    sign_bundle(bundle, load_signer(key))
    (bundle / "model.joblib").write_bytes(b"not the signed model")
    code, _, err = _cli(["verify", bundle, "--public-key", pub], capsys)
    assert code == 1
    line = _one_line_error(err)
    assert f"signature valid (key {load_public_key(pub).key_id}) but checksum mismatch" in line
    with pytest.raises(PalpiteError, match="checksum mismatch"):
        sign_bundle(bundle, load_signer(key))  # nor is a damaged bundle signed


def test_package_signs_as_it_writes(
    tmp_path: Path,
    classifier: LogisticRegression,
    keys: Callable[[str], tuple[Path, Path]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    key, pub = keys("k")
    joblib.dump(classifier, tmp_path / "est.joblib")
    (tmp_path / "schema.json").write_text(json.dumps({"kind": "vector", "name": "f", "length": 4}))
    argv = ["package", "--estimator", tmp_path / "est.joblib", "--schema", tmp_path / "schema.json"]
    code, out, _ = _cli([*argv, "--out", tmp_path / "b", "--signing-key", key], capsys)
    assert code == 0
    verify_signed_bundle(Path(out.strip()), [load_public_key(pub)])


# ---------------------------------------------------------------- publish


@pytest.fixture
def s3(moto_server: str) -> Any:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def _object(s3: Any, key: str) -> bytes | None:
    try:
        return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None


def test_publish_signs_and_uploads_the_signature_beside_the_card(
    s3: Any, bundle: Path, keys: Callable[[str], tuple[Path, Path]]
) -> None:
    key, pub = keys("k")
    unsigned = publish_bundle(bundle, BUCKET)
    sig_key = f"models/{bundle.name}/signature.json"
    assert unsigned.signed_by is None and _object(s3, sig_key) is None
    # Publishing again with a key signs a version already published: same archive.
    again = publish_bundle(bundle, BUCKET, signer=load_signer(key))
    assert again.status == "already published" and again.sha256 == unsigned.sha256
    assert again.signed_by == load_public_key(pub).key_id
    assert _object(s3, sig_key) == (bundle / SIGNATURE_FILE).read_bytes()


def test_publish_refuses_a_stale_signature_before_uploading(
    s3: Any, bundle: Path, keys: Callable[[str], tuple[Path, Path]]
) -> None:
    sign_bundle(bundle, load_signer(keys("k")[0]))
    bundle = _rehash(bundle, _new_labels)
    with pytest.raises(SignatureError, match=r"model_card\.json changed after signing"):
        publish_bundle(bundle, BUCKET)
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_publish_cli_signs_with_signing_key(
    s3: Any,
    bundle: Path,
    keys: Callable[[str], tuple[Path, Path]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    key, pub = keys("k")
    code, out, err = _cli(["publish", bundle, "--bucket", BUCKET, "--signing-key", key], capsys)
    assert code == 0
    key_id = load_public_key(pub).key_id
    assert json.loads(out)["signed_by"] == key_id and f"signed by key {key_id}" in err
    assert _object(s3, f"models/{bundle.name}/signature.json") is not None


# ---------------------------------------------------------------- AWS KMS (moto)


@pytest.fixture
def kms_key(moto_server: str) -> str:
    kms = boto3.client("kms")
    key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    kms.create_alias(AliasName="alias/palpite-signing", TargetKeyId=key_id["KeyId"])
    return "alias/palpite-signing"


def test_a_kms_key_signs_and_its_public_key_verifies(
    bundle: Path, tmp_path: Path, kms_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, pem, err = _cli(["public-key", "--key", f"kms:{kms_key}"], capsys)
    assert code == 0 and pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    (tmp_path / "kms.pub").write_text(pem)
    der = boto3.client("kms").get_public_key(KeyId=kms_key)["PublicKey"]
    key_id = hashlib.sha256(der).hexdigest()[:16]
    assert f"key id {key_id} (ecdsa-p256-sha256)" in err
    code, out, _ = _cli(["sign", bundle, "--key", f"kms:{kms_key}"], capsys)
    assert (code, out.strip()) == (0, key_id)
    assert json.loads((bundle / SIGNATURE_FILE).read_text())["algorithm"] == "ecdsa-p256-sha256"
    assert _cli(["verify", bundle, "--public-key", tmp_path / "kms.pub"], capsys)[0] == 0
    bundle = _rehash(bundle, _new_model)
    code, _, err = _cli(["verify", bundle, "--public-key", tmp_path / "kms.pub"], capsys)
    assert code == 1 and "changed after signing" in _one_line_error(err)


def test_kms_key_errors_are_one_line(moto_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    kms = boto3.client("kms")
    symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
    rsa_key = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    for key, expected in [
        ("alias/missing", "KMS get-public-key with key alias/missing failed: "),
        # Real KMS refuses GetPublicKey on a symmetric key; moto answers it.
        (symmetric, f"KMS key {symmetric} is SYMMETRIC_DEFAULT: signing needs an ECC_NIST_P256"),
        (rsa_key, f"KMS key {rsa_key} is RSA_2048: signing needs an ECC_NIST_P256"),
    ]:
        code, _, err = _cli(["sign", "unused", "--key", f"kms:{key}"], capsys)
        assert code == 1 and expected in _one_line_error(err)


def test_kms_signer_takes_a_client(bundle: Path, kms_key: str) -> None:
    signer = KmsSigner(kms_key, boto3.client("kms"))
    sign_bundle(bundle, signer)
    assert verify_signed_bundle(bundle, [signer.public_key])[1] == signer.public_key


# ---------------------------------------------------------------- other artifacts' manifests


def _release(tmp_path: Path, name: str, content: bytes, bare: bool = False) -> tuple[Path, Path]:
    """An archive and its `.sha256` as build_release.yml (`<hex>  <name>`) or the prebuilt
    Python's publish (a bare `<hex>`) write them."""
    archive = tmp_path / name
    archive.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    manifest = tmp_path / f"{name}.sha256"
    manifest.write_text(f"{digest}\n" if bare else f"{digest}  {name}\n")
    return archive, manifest


@pytest.mark.parametrize(
    ("kind", "name", "bare"),
    [
        ("app-release", "palpite-app-0.1.0-1a2b3c4d5e.tar.gz", False),
        ("python-archive", "cpython-3.12.1.tar.zst", True),
    ],
)
def test_signed_checksum_manifests_of_releases_and_python_archives(
    kind: str, name: str, bare: bool, tmp_path: Path, keys: Callable[[str], tuple[Path, Path]]
) -> None:
    (key, pub), (attacker, _) = keys("k"), keys("attacker")
    trusted = [load_public_key(pub)]
    archive, manifest = _release(tmp_path, name, b"release v1", bare)
    signature = Path(f"{manifest}.sig")
    document = sign_manifest(manifest, signature, load_signer(key), kind=kind, name=name)
    assert document["name"] == name
    assert verify_checksummed_file(archive, manifest, signature, trusted, kind=kind) == trusted[0]
    # A different kind, or this signature under another artifact name, is refused.
    with pytest.raises(SignatureError, match=f"the signature is for kind {kind}"):
        other_kind = "python-archive" if kind == "app-release" else "app-release"
        verify_checksummed_file(archive, manifest, signature, trusted, kind=other_kind)
    renamed = archive.rename(tmp_path / f"v2-{name}")
    with pytest.raises(SignatureError, match=f"the signature is for {name}, not v2-{name}"):
        verify_checksummed_file(renamed, manifest, signature, trusted, kind=kind)
    renamed.rename(archive)
    # The archive replaced, its manifest rewritten consistently: the signature fails.
    _release(tmp_path, name, b"release v1, backdoored", bare)
    with pytest.raises(SignatureError, match=rf"{kind} {name}: signature check failed: .*changed"):
        verify_checksummed_file(archive, manifest, signature, trusted, kind=kind)
    # ... and re-signed by a key the hosts do not trust: refused too.
    sign_manifest(manifest, signature, load_signer(attacker), kind=kind, name=name)
    with pytest.raises(SignatureError, match="which is not trusted"):
        verify_checksummed_file(archive, manifest, signature, trusted, kind=kind)
    # The archive alone replaced (manifest still signed): the checksum check catches it.
    _release(tmp_path, name, b"release v1", bare)
    sign_manifest(manifest, signature, load_signer(key), kind=kind, name=name)
    archive.write_bytes(b"release v1, swapped")
    with pytest.raises(PalpiteError, match=r"signature valid .* but checksum mismatch"):
        verify_checksummed_file(archive, manifest, signature, trusted, kind=kind)


def test_verify_manifest_needs_a_trusted_key_and_sign_manifest_a_safe_name(
    tmp_path: Path, keys: Callable[[str], tuple[Path, Path]]
) -> None:
    manifest = tmp_path / "m"
    manifest.write_text("x\n")
    with pytest.raises(SignatureError, match="no trusted public key given"):
        verify_manifest(manifest, tmp_path / "m.sig", [], kind="app-release")
    signer = load_signer(keys("k")[0])
    for kind, name in [("model-bundle", "../up"), ("unknown-kind", "name"), ("app-release", "")]:
        with pytest.raises(PalpiteError, match="unknown kind or unsafe name"):
            sign_manifest(manifest, tmp_path / "m.sig", signer, kind=kind, name=name)
    assert not (tmp_path / "m.sig").exists()
