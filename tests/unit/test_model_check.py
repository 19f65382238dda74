"""palpite-model-check (the model_api role's smoke test of a bundle on a host), run as the
role runs it: a command in a subprocess, with the project's Python. The role calls the
package's console script (`palpite-model-check`, pyproject.toml); `python -m app.model_check`
is the same entry point without needing the venv reinstalled."""

import importlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from app import model_check
from ml.bundle import archive_bundle, write_bundle
from ml.card import MODEL_FILE
from tests.unit.bundle.bundle_helpers import make_data, vector_fields

REPO = Path(__file__).resolve().parents[2]


def vector_bundle(out: Path, model: object, x: np.ndarray, y: np.ndarray) -> Path:
    model.fit(x, y)  # type: ignore[attr-defined]
    return write_bundle(out, model, vector_fields())


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.model_check", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return make_data(200)


def test_smoke_of_a_good_bundle_prints_its_prediction(tmp_path, data):
    bundle = vector_bundle(tmp_path, LogisticRegression(), *data)
    version = json.loads((bundle / "model_card.json").read_text())["version"]
    result = check("smoke", str(bundle), "--expect-version", version)
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout)
    assert line["version"] == version
    assert sum(line["prediction"]["probabilities"].values()) == pytest.approx(1.0)


def test_smoke_of_a_bundle_without_probabilities_is_one_clear_line(tmp_path, data):
    # Loads, but log(-x) is NaN for the schema's example (positive numbers).
    model = make_pipeline(
        FunctionTransformer(np.negative), FunctionTransformer(np.log), LogisticRegression()
    )
    bundle = vector_bundle(tmp_path, model, -np.abs(data[0]) - 0.1, data[1])
    result = check("smoke", str(bundle))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("palpite-model-check: the sample instance ")
    assert "gets a 422 (unscorable_input)" in result.stderr
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr


def test_smoke_names_the_version_it_expected(tmp_path, data):
    bundle = vector_bundle(tmp_path, LogisticRegression(), *data)
    result = check("smoke", str(bundle), "--expect-version", "20990101T000000Z-00000000")
    assert result.returncode == 1
    assert "expected 20990101T000000Z-00000000" in result.stderr


class _WritesAMarker:
    """Unpickling this creates a file: the proof that a load ran the pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))  # opening it for writing creates it


def test_smoke_checks_every_file_before_it_unpickles_anything(tmp_path, data):
    # The role runs `smoke` alone (no separate `verify`): a model file swapped after
    # packaging must be refused on its sha256 without ever being loaded.
    bundle = vector_bundle(tmp_path, LogisticRegression(), *data)
    marker = tmp_path / "unpickled"
    joblib.dump(_WritesAMarker(marker), bundle / MODEL_FILE)
    joblib.load(bundle / MODEL_FILE)  # the swapped file does run code when loaded...
    assert marker.exists()
    marker.unlink()
    result = check("smoke", str(bundle))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("palpite-model-check: the app cannot load ")
    assert f"checksum mismatch for {MODEL_FILE}" in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr  # one line: the role's message
    assert not marker.exists()  # ...but smoke refused it before loading


def test_the_console_script_is_this_entry_point():
    # The role runs <venv>/bin/palpite-model-check: pyproject.toml must name this main().
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, attr = scripts["palpite-model-check"].partition(":")
    assert getattr(importlib.import_module(module), attr) is model_check.main
    result = check("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: palpite-model-check ")
    assert all(name in result.stdout for name in ("unpack", "verify", "smoke"))


def test_unpack_reads_the_archive_from_stdin(tmp_path, data):
    # The role opens the root-only archive and hands it as stdin to an unprivileged unpack.
    bundle = vector_bundle(tmp_path / "built", LogisticRegression(), *data)
    version = json.loads((bundle / "model_card.json").read_text())["version"]
    archive = archive_bundle(bundle, tmp_path)
    releases = tmp_path / "releases"
    releases.mkdir()
    with archive.open("rb") as stdin:
        result = subprocess.run(
            [sys.executable, "-m", "app.model_check", "unpack", "-", str(releases), version],
            cwd=REPO,
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["path"] == str(releases / version)
    assert check("verify", str(releases / version), "--expect-version", version).returncode == 0


def test_unpack_from_stdin_refuses_a_corrupt_archive_in_one_line(tmp_path):
    releases = tmp_path / "releases"
    releases.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "app.model_check", "unpack", "-", str(releases), "v"],
        cwd=REPO,
        input=b"not a tarball",
        capture_output=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert stderr.startswith("palpite-model-check: BundleError: cannot unpack <stdin>")
    assert list(releases.iterdir()) == []
