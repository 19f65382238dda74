"""Building the app release from the working tree and uploading it (playbooks/build_release.yml).

Against a real moto server on loopback: the tarball, its sha256 object and the
releases/app/latest.json pointer land in the bucket; the tarball holds what `poetry install`
needs and no bytecode; the same tree gives the same version, and a second run changes nothing.
"""

import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "roles/model_api/files/build-app-release.py"
BIN = Path(sys.executable).parent


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_app_release", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tree(root: Path) -> Path:
    (root / "app").mkdir(parents=True)
    (root / "app" / "__pycache__").mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1.2.3"\n')
    (root / "poetry.lock").write_text("# lock\n")
    (root / "README.md").write_text("readme\n")
    (root / "app" / "main.py").write_text("print('hi')\n")
    (root / "app" / "__pycache__" / "main.cpython-312.pyc").write_bytes(b"\0")
    (root / "app" / "run.sh").write_text("#!/bin/sh\n")
    (root / "app" / "run.sh").chmod(0o755)
    return root


PATHS = ["pyproject.toml", "poetry.lock", "README.md", "app"]


def test_build_is_reproducible_and_versioned_by_content(tmp_path):
    builder = _load_builder()
    src = _tree(tmp_path / "src")
    first = builder.build(src, tmp_path / "out1", PATHS)
    os.utime(src / "app" / "main.py", (1, 1))  # times do not matter ...
    second = builder.build(src, tmp_path / "out2", PATHS)
    assert first["sha256"] == second["sha256"]
    assert first["version"] == second["version"]
    assert re.fullmatch(r"1\.2\.3-[0-9a-f]{10}", first["version"])
    assert first["version"].endswith(first["sha256"][:10])
    data = Path(first["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == first["sha256"]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"pyproject.toml", "poetry.lock", "README.md", "app", "app/main.py",
                            "app/run.sh"}  # fmt: skip
    assert members["app/run.sh"].mode == 0o755
    assert members["app/main.py"].mode == 0o644
    assert all(m.uid == 0 and m.mtime == 0 for m in members.values())
    # ... contents do: an edit, even uncommitted, is a new version.
    (src / "app" / "main.py").write_text("print('bye')\n")
    third = builder.build(src, tmp_path / "out3", PATHS)
    assert third["version"] != first["version"]


def test_build_refuses_a_missing_path(tmp_path):
    src = _tree(tmp_path / "src")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(src), str(tmp_path / "out"), "app", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "nope does not exist" in proc.stderr


def _snapshot(dest: Path) -> Path:
    """A copy of the release's paths: others may edit the working tree during the test."""
    dest.mkdir()
    for name in ("pyproject.toml", "poetry.lock", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    for name in ("app", "ml"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _playbook(bucket: str, out: Path, source: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_ROLES_PATH=str(REPO / "roles"),
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_NOCOLOR="1",
    )
    return subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            "localhost,",
            str(REPO / "playbooks/build_release.yml"),
            "-e",
            f"model_api_artifact_bucket={bucket}",
            "-e",
            f"model_api_build_output_dir={out}",
            "-e",
            f"model_api_build_source_dir={source}",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _recap_changed(stdout: str) -> int:
    m = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)", stdout)
    assert m, stdout
    return int(m.group(1))


@pytest.mark.slow
def test_build_release_playbook_uploads_and_is_idempotent(moto_server, tmp_path):
    s3 = boto3.client("s3", endpoint_url=moto_server)
    s3.create_bucket(Bucket="artifacts")
    source = _snapshot(tmp_path / "tree")
    first = _playbook("artifacts", tmp_path / "out", source)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert _recap_changed(first.stdout) >= 3

    pointer = json.loads(
        s3.get_object(Bucket="artifacts", Key="releases/app/latest.json")["Body"].read()
    )
    version = pointer["version"]
    key = f"releases/app/{version}/palpite-app-{version}.tar.gz"
    assert pointer["key"] == key
    body = s3.get_object(Bucket="artifacts", Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == pointer["sha256"]
    sha_line = s3.get_object(Bucket="artifacts", Key=key + ".sha256")["Body"].read().decode()
    assert sha_line == f"{pointer['sha256']}  palpite-app-{version}.tar.gz\n"
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        names = tar.getnames()
    for needed in ("pyproject.toml", "poetry.lock", "README.md", "app/main.py",
                   "app/gunicorn.conf.py", "ml/bundle.py"):  # fmt: skip
        assert needed in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith(("tests/", "roles/", ".venv/"))]

    second = _playbook("artifacts", tmp_path / "out", source)
    assert second.returncode == 0, second.stdout[-4000:]
    assert _recap_changed(second.stdout) == 0
    assert f"app release {version}" in second.stdout
