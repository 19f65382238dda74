"""Bundle archives: write a reproducible `<version>.tar.gz`, and unpack one safely."""

import gzip
import hashlib
import tarfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from ml.card import CARD_FILE, BundleError, read_card, require
from ml.checksums import check_digests, check_files, check_listing, verified_card
from ml.fileio import atomic_directory, atomic_output


def archive_bundle(bundle_dir: Path, dest_dir: Path | None = None) -> Path:
    """Write `<version>.tar.gz` (beside the bundle unless `dest_dir`) and return its path.

    The archive is byte-for-byte reproducible (sorted names, zero times and owners), so
    archiving one bundle twice gives one sha256.
    """
    bundle_dir = Path(bundle_dir)
    return write_archive(bundle_dir, read_card(bundle_dir), dest_dir)


def write_archive(bundle_dir: Path, card: Mapping[str, Any], dest_dir: Path | None = None) -> Path:
    """archive_bundle for a card already read: each file is checked against the card as it
    is archived (read once), and a damaged bundle leaves no archive."""
    bundle_dir = Path(bundle_dir)
    check_listing(bundle_dir, card)
    dest_dir = Path(dest_dir) if dest_dir is not None else bundle_dir.parent
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{card['version']}.tar.gz"
    digests: dict[str, str] = {}
    with atomic_output(dest) as tmp:
        with (
            tmp.open("wb") as raw,
            _gzip_writer(raw) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for rel in sorted([*card["files"], CARD_FILE]):
                path = bundle_dir / rel
                info = tarfile.TarInfo(rel)
                info.size = path.stat().st_size
                info.mode = 0o644
                with path.open("rb") as fh:
                    reader = _HashingReader(fh)
                    tar.addfile(info, reader)
                digests[rel] = reader.hexdigest()
        check_digests(card, digests)
        tmp.chmod(0o644)
    return dest


class _HashingReader:
    """A file's reads, hashed on the way: the bytes archived are the bytes checked."""

    def __init__(self, fh: Any) -> None:
        self._fh = fh
        self._sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self._sha256.update(data)
        return data

    def hexdigest(self) -> str:
        return self._sha256.hexdigest()


def _gzip_writer(raw: Any) -> gzip.GzipFile:
    # mtime=0 and no file name keep the gzip header identical between runs.
    return gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)


def _safe_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    names: set[str] = set()
    for member in members:
        name = member.name
        path = PurePosixPath(name)
        require(
            not path.is_absolute() and ".." not in path.parts and name not in names,
            f"archive member {name!r} escapes the bundle or repeats",
        )
        require(
            member.isfile() or member.isdir(),
            f"archive member {name!r} is not a regular file or directory",
        )
        names.add(name)
    return members


def unpack_archive(
    archive: Path | BinaryIO, dest_root: Path, expected_version: str | None = None
) -> Path:
    """Unpack a bundle archive to `dest_root/<version>/`, checking every file's sha256.

    `archive` is a path or an open file (the hosts hand an unprivileged unpacker the
    archive as its stdin, a file it could not open itself). Links, devices, absolute names
    and '..' are refused. If that version's directory exists already and is intact, it is
    returned as is.
    """
    dest_root = Path(dest_root)
    source = {"name": archive} if isinstance(archive, Path) else {"fileobj": archive}
    shown = archive if isinstance(archive, Path) else getattr(archive, "name", "the archive")
    with atomic_directory(dest_root, ".unpack-") as tmp:
        try:
            with tarfile.open(mode="r:gz", **source) as tar:
                tar.extractall(tmp, members=_safe_members(tar), filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BundleError(f"cannot unpack {shown}: {exc}") from None
        card = read_card(tmp)
        version = card["version"]
        require(
            expected_version in (None, version),
            f"archive holds version {version}, expected {expected_version}",
        )
        check_files(tmp, card)
        final = dest_root / version
        if final.exists():  # an intact copy stays; the unpacked one goes
            verified_card(final)
            return final
        tmp.chmod(0o755)
        tmp.rename(final)
    return final
