import io
import tarfile
from pathlib import Path

import pytest

from ml.bundle import BundleError, archive_bundle, load_bundle, sha256_file, unpack_archive


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def test_archive_is_reproducible_and_unpacks_to_a_loadable_bundle(
    tmp_path: Path, bundle: Path
) -> None:
    first = archive_bundle(bundle, tmp_path / "one")
    second = archive_bundle(bundle, tmp_path / "two")
    assert first.name == f"{bundle.name}.tar.gz"
    assert sha256_file(first) == sha256_file(second)

    unpacked = unpack_archive(first, tmp_path / "releases", expected_version=bundle.name)
    assert unpacked == tmp_path / "releases" / bundle.name
    assert load_bundle(unpacked).version == bundle.name
    # A second unpack of the same version keeps the intact copy.
    assert unpack_archive(second, tmp_path / "releases") == unpacked
    assert [p.name for p in (tmp_path / "releases").iterdir()] == [bundle.name]


def test_archive_refuses_a_damaged_bundle(tmp_path: Path, bundle: Path) -> None:
    (bundle / "model.joblib").write_bytes(b"broken")
    with pytest.raises(BundleError, match="checksum mismatch"):
        archive_bundle(bundle, tmp_path / "out")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_unpack_refuses_a_version_other_than_expected(tmp_path: Path, bundle: Path) -> None:
    archive = archive_bundle(bundle, tmp_path)
    with pytest.raises(BundleError, match=f"holds version {bundle.name}, expected 2"):
        unpack_archive(archive, tmp_path / "releases", expected_version="20990101T000000Z-00000000")
    assert list((tmp_path / "releases").iterdir()) == []


def test_unpack_checks_every_file(tmp_path: Path, bundle: Path) -> None:
    archive = archive_bundle(bundle, tmp_path)
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    tampered = [(m, b"evil" if m.name == "model.joblib" else data) for m, data in members]
    with pytest.raises(BundleError, match=r"checksum mismatch for model\.joblib"):
        unpack_archive(_tar(tmp_path / "bad.tar.gz", tampered), tmp_path / "releases")
    assert list((tmp_path / "releases").iterdir()) == []


def _link(name: str, kind: bytes, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (tarfile.TarInfo("../escaped.txt"), "escapes the bundle"),
        (tarfile.TarInfo("adapter/../../escaped.txt"), "escapes the bundle"),
        (tarfile.TarInfo("/tmp/escaped.txt"), "escapes the bundle"),
        (_link("model.joblib", tarfile.SYMTYPE, "/etc/passwd"), "not a regular file"),
        (_link("model.joblib", tarfile.LNKTYPE, "../escaped.txt"), "not a regular file"),
    ],
)
def test_unpack_refuses_path_traversal_and_links(
    tmp_path: Path, member: tarfile.TarInfo, message: str
) -> None:
    archive = _tar(tmp_path / "evil.tar.gz", [(member, b"x")])
    dest = tmp_path / "deep" / "releases"
    with pytest.raises(BundleError, match=message):
        unpack_archive(archive, dest)
    assert not (tmp_path / "deep" / "escaped.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()
    assert list(dest.iterdir()) == []


def test_unpack_reports_a_corrupt_archive_in_one_line(tmp_path: Path) -> None:
    archive = tmp_path / "junk.tar.gz"
    archive.write_bytes(b"not a tarball")
    with pytest.raises(BundleError, match="cannot unpack"):
        unpack_archive(archive, tmp_path / "releases")
