"""A bundle's files against its card: every listed file present with its sha256, no other."""

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ml.card import CARD_FILE, SIGNATURE_FILE, read_card, require
from ml.fileio import sha256_file


def bundle_files(bundle_dir: Path) -> list[str]:
    """Every file under `bundle_dir` except the card and its signature; refuses symlinks."""
    files: list[str] = []
    for path in sorted(bundle_dir.rglob("*")):
        rel = path.relative_to(bundle_dir).as_posix()
        require(not path.is_symlink(), f"bundle holds a symlink: {rel}")
        if path.is_file() and rel not in (CARD_FILE, SIGNATURE_FILE):
            files.append(rel)
    return files


def hash_tree(bundle_dir: Path) -> dict[str, str]:
    """sha256 of every file under `bundle_dir` except the card and its signature."""
    return {rel: sha256_file(bundle_dir / rel) for rel in bundle_files(bundle_dir)}


def content_hash(files: Mapping[str, str]) -> str:
    """The 8 hex digits of a version that name its files' content."""
    text = "".join(f"{name}\0{digest}\n" for name, digest in sorted(files.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def check_listing(bundle_dir: Path, card: Mapping[str, Any]) -> list[str]:
    """Every listed file present and no unlisted file (not their bytes); returns the files."""
    actual = bundle_files(Path(bundle_dir))
    expected: Mapping[str, str] = card["files"]
    missing = sorted(set(expected) - set(actual))
    require(not missing, f"bundle {card['version']} is missing {', '.join(missing)}")
    extra = sorted(set(actual) - set(expected))
    require(not extra, f"bundle {card['version']} has unlisted files: {', '.join(extra)}")
    return actual


def check_digests(card: Mapping[str, Any], actual: Mapping[str, str]) -> None:
    """Every listed file's sha256 in `actual` is the card's."""
    for name, digest in sorted(card["files"].items()):
        require(
            actual[name] == digest,
            f"checksum mismatch for {name}: card says {digest[:12]}…, file is {actual[name][:12]}…",
        )


def check_files(bundle_dir: Path, card: Mapping[str, Any]) -> None:
    """Every listed file present with its sha256, and no unlisted file."""
    bundle_dir = Path(bundle_dir)
    names = check_listing(bundle_dir, card)
    check_digests(card, {rel: sha256_file(bundle_dir / rel) for rel in names})


def verified_card(bundle_dir: Path) -> dict[str, Any]:
    """The bundle's card, checked, with every file checked against it (no unpickling)."""
    card = read_card(bundle_dir)
    check_files(bundle_dir, card)
    return card
