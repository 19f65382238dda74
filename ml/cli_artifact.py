"""`python -m ml sign-artifact` and `sign-published`: signatures over published archives'
`.sha256` manifests, what hosts verify before they download (ml.artifact_sign)."""

import argparse
import sys
from pathlib import Path
from typing import Any

from ml.artifact_sign import KIND_PREFIXES, sign_all_published, sign_published
from ml.cli_bundle import location_args
from ml.errors import PalpiteError
from ml.s3 import s3_client

_KEY_HELP = "private key: PEM file (PKCS#8, Ed25519 or P-256), or kms:KEY_ID|ARN|alias/NAME"


def run_sign_artifact(args: argparse.Namespace) -> int:
    from ml.signing import load_signer

    signer = load_signer(args.signing_key)
    key = f"{args.prefix.strip('/')}/{args.key}" if args.prefix.strip("/") else args.key
    key_id, uploaded = sign_published(s3_client(), args.bucket, key, args.kind, signer, args.file)
    done = "signed" if uploaded else "already signed:"
    print(f"{done} {args.kind} s3://{args.bucket}/{key} with key {key_id}", file=sys.stderr)
    print(key_id)
    return 0


def run_sign_published(args: argparse.Namespace) -> int:
    from ml.signing import load_signer

    signer = load_signer(args.signing_key)
    signed, refused = sign_all_published(s3_client(), args.bucket, args.prefix, signer)
    for line in signed:
        print(f"signed {line} with key {signer.public_key.key_id}")
    for line in refused:
        print(f"refused: {line}", file=sys.stderr)
    if refused:
        raise PalpiteError(f"{len(refused)} artifact(s) not signed (above); {len(signed)} signed")
    print(f"{len(signed)} artifact(s) signed with key {signer.public_key.key_id}", file=sys.stderr)
    return 0


def add_artifact_parsers(sub: Any) -> None:
    kinds = [kind for _, kind in KIND_PREFIXES]
    p = sub.add_parser(
        "sign-artifact",
        help="sign a published archive's .sha256 (writes <key>.sha256.sig)",
        description="Check a published archive against its .sha256 (the local --file when"
        " given, else the bucket's object), then sign the .sha256 as the bucket holds it.",
    )
    p.add_argument("key", help="the archive's key under the prefix (e.g. releases/app/V/…)")
    p.add_argument("--kind", required=True, choices=kinds)
    p.add_argument("--file", type=Path, help="the local copy of the archive just uploaded")
    p.add_argument("--signing-key", required=True, metavar="KEY_FILE", help=_KEY_HELP)
    location_args(p)
    p.set_defaults(func=run_sign_artifact)

    p = sub.add_parser(
        "sign-published",
        help="sign every published archive whose checksum matches (migration)",
        description="For models/, releases/app/ and python/ under the prefix: check each"
        " archive against its .sha256 and sign that. Trusts what the bucket holds now.",
    )
    p.add_argument("--signing-key", required=True, metavar="KEY_FILE", help=_KEY_HELP)
    location_args(p)
    p.set_defaults(func=run_sign_published)
