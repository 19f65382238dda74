"""roles/pyenv/files/pyenv-pack-python.sh: the prebuilt-cache package format.

The controller's own CPython (a shared-library build whose RUNPATH is its original folder)
is packed for another prefix, unpacked there, and must work there: RUNPATH made
$ORIGIN-relative, scripts' shebangs and sysconfig rewritten, nothing of the controller's
site-packages but pip, no test suite, and a sha256 file that matches.
"""

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACK = REPO / "roles/pyenv/files/pyenv-pack-python.sh"
SRC = Path(sys.base_prefix)  # the controller's CPython 3.12 (pyenv's versions/3.12.x)

pytestmark = pytest.mark.skipif(
    not shutil.which("patchelf")
    or not shutil.which("zstd")
    or SRC.parent.name != "versions"  # a pyenv versions/X.Y.Z prefix, never e.g. /usr
    or not (SRC / "bin/python3").exists(),
    reason="needs patchelf, zstd and a pyenv-built CPython running the tests",
)


def _runpath(path: Path) -> str:
    return subprocess.run(
        ["patchelf", "--print-rpath", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_pack_relocates_the_controllers_python(tmp_path: Path) -> None:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}.{sys.version_info[2]}"
    dest = tmp_path / "opt/pyenv/versions" / version
    out = tmp_path / f"cpython-{version}.tar.zst"
    subprocess.run([str(PACK), str(SRC), str(dest), str(out)], check=True, capture_output=True)

    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert (tmp_path / f"{out.name}.sha256").read_text() == digest + "\n"

    listing = subprocess.run(
        ["tar", "--zstd", "-tf", str(out)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert {p.split("/")[0] for p in listing} == {version}  # one top-level directory
    assert not [
        p for p in listing if f"/lib/python{sys.version_info[0]}.{sys.version_info[1]}/test/" in p
    ]

    dest.parent.mkdir(parents=True)
    subprocess.run(["tar", "--zstd", "-xf", str(out), "-C", str(dest.parent)], check=True)

    python = dest / "bin/python3"
    if _runpath(SRC / "bin/python3").startswith(str(SRC)):  # a shared build: relocated RUNPATH
        assert _runpath(dest / f"bin/python{sys.version_info[0]}.{sys.version_info[1]}") == (
            "$ORIGIN/../lib"
        )
    # works from its new place, with its new prefix, with the controller's copy out of reach
    code = "import ssl, sqlite3, lzma, bz2, ctypes, zlib, sys, sysconfig; "
    code += "print(sys.prefix); print(sysconfig.get_config_var('prefix'))"
    result = subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": ""},
    )
    assert result.stdout.splitlines() == [str(dest), str(dest)]

    pip = dest / "bin/pip3"
    assert (
        pip.read_text().splitlines()[0]
        == f"#!{dest}/bin/python{sys.version_info[0]}.{sys.version_info[1]}"
    )
    subprocess.run([str(pip), "--version"], check=True, capture_output=True)

    site = next((dest / "lib").glob("python3*/site-packages"))
    kept = {p.name for p in site.iterdir()}
    assert "pip" in kept
    assert not [n for n in kept if n.endswith(".pth")]  # e.g. a controller's own .pth hooks
