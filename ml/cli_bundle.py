"""The bundle commands of `python -m ml` (signing, package, publish, presign, fetch):
their parsers and what each runs. ml/cli.py assembles them with the pipeline's commands."""

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ml.errors import PalpiteError
from ml.fetch import download_bundle, fetch_url, presign_bundle
from ml.gate import DEFAULT_MIN_GAIN
from ml.package import DEFAULT_OUT, package_estimator, parse_pairs
from ml.publish import publish_bundle


def signing_key_arg(p: argparse.ArgumentParser, when: str = "") -> None:
    p.add_argument(
        "--signing-key",
        metavar="KEY_FILE",
        help=f"sign the bundle{when} with this private key (PEM file, or kms:KEY_ID)",
    )


# ---------------------------------------------------------------- signing (ml.signing)


def run_keygen(args: argparse.Namespace) -> int:
    from ml.signing import generate_key

    public = generate_key(args.out)
    print(f"wrote {args.out} (0600) and {args.out}.pub, key id {public.key_id}", file=sys.stderr)
    print(public.key_id)
    return 0


def run_sign(args: argparse.Namespace) -> int:
    from ml.signing import load_signer, sign_bundle

    document = sign_bundle(args.bundle, load_signer(args.key))
    print(f"signed bundle {document['name']} with key {document['key_id']}", file=sys.stderr)
    print(document["key_id"])
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from ml.signing import load_trusted_keys, verify_signed_bundle

    card, key = verify_signed_bundle(args.bundle, load_trusted_keys(args.public_key))
    print(
        f"verified bundle {card['version']}: signature by key {key.key_id},"
        f" checksums of {len(card['files'])} file(s) match",
        file=sys.stderr,
    )
    print(card["version"])
    return 0


def run_public_key(args: argparse.Namespace) -> int:
    from ml.signing import load_signer

    public = load_signer(args.key).public_key
    print(f"key id {public.key_id} ({public.algorithm})", file=sys.stderr)
    sys.stdout.write(public.pem().decode())
    return 0


def _add_signing_parsers(sub: Any) -> None:
    key_help = "private key: PEM file (PKCS#8, Ed25519 or P-256), or kms:KEY_ID|ARN|alias/NAME"

    p = sub.add_parser("keygen", help="write a new Ed25519 signing key and its .pub")
    p.add_argument("--out", type=Path, required=True, metavar="KEY_FILE",
                   help="private key to write (0600); its public key: KEY_FILE.pub")  # fmt: skip
    p.set_defaults(func=run_keygen)

    p = sub.add_parser("sign", help="sign a bundle: write BUNDLE_DIR/signature.json")
    p.add_argument("bundle", type=Path, metavar="BUNDLE_DIR")
    p.add_argument("--key", required=True, metavar="KEY_FILE", help=key_help)
    p.set_defaults(func=run_sign)

    p = sub.add_parser("verify", help="check a bundle's signature, then its checksums")
    p.add_argument("bundle", type=Path, metavar="BUNDLE_DIR")
    p.add_argument("--public-key", type=Path, action="append", required=True, metavar="KEY_FILE",
                   help="a trusted public key (PEM); repeat for several (rotation)")  # fmt: skip
    p.set_defaults(func=run_verify)

    p = sub.add_parser("public-key", help="print the public key (PEM) of a key file or KMS key")
    p.add_argument("--key", required=True, metavar="KEY_FILE", help=key_help)
    p.set_defaults(func=run_public_key)


# ---------------------------------------------------------------- bundles (package, publish, fetch)


def run_package(args: argparse.Namespace) -> int:
    signer = None
    if args.signing_key:  # Loaded first: a bad key fails before any work.
        from ml.signing import load_signer

        signer = load_signer(args.signing_key)
    bundle = package_estimator(
        args.estimator,
        args.schema,
        args.out,
        name=args.name,
        extra=parse_pairs(args.card_extra, "--card-extra"),
        class_labels=parse_pairs(args.class_label, "--class-label"),
    )
    if signer is not None:
        from ml.signing import sign_bundle

        sign_bundle(bundle, signer)
        print(f"signed {bundle.name} with key {signer.public_key.key_id}", file=sys.stderr)
    print(
        f"packaged {bundle.name} (unevaluated: publish needs --allow-unevaluated)", file=sys.stderr
    )
    print(bundle)
    return 0


def add_package_parser(sub: Any) -> None:
    p = sub.add_parser(
        "package",
        help="wrap a fitted scikit-learn classifier as a model bundle",
        description="Wrap a fitted scikit-learn classifier on a numeric vector as a bundle;"
        " prints the bundle directory.",
    )
    p.add_argument("--estimator", type=Path, required=True, metavar="FILE.joblib")
    p.add_argument("--schema", type=Path, required=True, metavar="SCHEMA.json")
    p.add_argument("--name", help="model name in the card (default: the estimator file stem)")
    p.add_argument(
        "--card-extra", action="append", default=[], metavar="KEY=VALUE", help="card extra field"
    )
    p.add_argument(
        "--class-label",
        action="append",
        default=[],
        metavar="CLASS=LABEL",
        help="human label for a class (default: the class itself)",
    )
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"parent directory (default: {DEFAULT_OUT})"
    )
    signing_key_arg(p)
    p.set_defaults(func=run_package)


def location_args(p: argparse.ArgumentParser) -> None:
    bucket = os.environ.get("PALPITE_BUCKET")
    p.add_argument(
        "--bucket",
        default=bucket,
        required=bucket is None,
        help="artifact bucket (default: $PALPITE_BUCKET)",
    )
    p.add_argument(
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


def add_publish_parser(sub: Any) -> None:
    p = sub.add_parser(
        "publish",
        help="upload a bundle to the artifact bucket (quality gate applies)",
        description="Upload a bundle to s3://BUCKET/<prefix>models/<version>/ after the"
        " quality gate; prints a JSON line with version, key and sha256.",
    )
    p.add_argument("bundle", type=Path, help="bundle directory")
    location_args(p)
    p.add_argument(
        "--min-gain",
        type=float,
        default=DEFAULT_MIN_GAIN,
        help="log loss the model must beat the base rate by (default: %(default)s)",
    )
    p.add_argument(
        "--allow-unevaluated",
        action="store_true",
        help="publish a bundle without backtest metrics (from `package`)",
    )
    signing_key_arg(p, when=" first")
    p.set_defaults(func=run_publish)


def add_presign_parser(sub: Any) -> None:
    p = sub.add_parser(
        "presign",
        help="presigned GET URL and sha256 of a published bundle (JSON)",
    )
    p.add_argument("version")
    location_args(p)
    p.add_argument("--expires-in", type=int, default=3600, help="seconds (default: 3600)")
    p.set_defaults(func=run_presign)


def add_fetch_parser(sub: Any) -> None:
    p = sub.add_parser(
        "fetch",
        help="download a published bundle and verify its checksums",
        description="Download a bundle version from the bucket, or (on a host, without AWS"
        " credentials) from a presigned URL; verify it and unpack it to DEST/<version>/.",
    )
    p.add_argument("version")
    p.add_argument("--dest", type=Path, required=True, help="parent directory")
    p.add_argument("--bucket", default=os.environ.get("PALPITE_BUCKET"))
    p.add_argument("--prefix", default=os.environ.get("PALPITE_PREFIX", ""))
    p.add_argument("--url", help="a presigned URL (from `presign`) instead of the bucket")
    p.add_argument("--sha256", help="the archive's sha256, with --url")
    p.set_defaults(func=run_fetch)


def add_bundle_parsers(sub: Any) -> None:
    _add_signing_parsers(sub)
    add_package_parser(sub)
    add_publish_parser(sub)
    add_presign_parser(sub)
    add_fetch_parser(sub)
