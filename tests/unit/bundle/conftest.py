"""Fixtures for the bundle tests: a small fitted classifier and bundles made from it."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from ml.bundle import CARD_FILE, write_bundle

# Card order differs from the estimator's sorted classes_, so reordering is exercised.
CARD_CLASSES = ["mid", "high", "low"]
FEATURES = ["x0", "x1", "x2", "x3"]


def make_data(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = np.select([x[:, 0] > 0.5, x[:, 0] < -0.5], ["high", "low"], "mid")
    return x, y


@pytest.fixture(scope="session")
def classifier() -> LogisticRegression:
    x, y = make_data()
    return LogisticRegression(max_iter=500).fit(x, y)


def vector_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": "test-vector",
        "adapter": {"kind": "vector", "feature_code_version": None},
        "input_schema": {
            "kind": "vector",
            "name": "features",
            "length": 4,
            "feature_names": FEATURES,
        },
        "feature_names": FEATURES,
        "classes": CARD_CLASSES,
        "class_labels": {c: c.title() for c in CARD_CLASSES},
        "metrics": {"model": {"log_loss": 0.5}, "base_rate": {"log_loss": 1.0}},
    }
    fields.update(overrides)
    return fields


@pytest.fixture
def bundle(tmp_path: Path, classifier: LogisticRegression) -> Path:
    return write_bundle(tmp_path / "bundles", classifier, vector_fields())


@pytest.fixture
def edit_card() -> Callable[[Path, Callable[[dict[str, Any]], None]], None]:
    def edit(bundle_dir: Path, change: Callable[[dict[str, Any]], None]) -> None:
        card = json.loads((bundle_dir / CARD_FILE).read_text())
        change(card)
        (bundle_dir / CARD_FILE).write_text(json.dumps(card))

    return edit


@pytest.fixture
def unpickle_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Make joblib.load fail loudly and record calls: proof that nothing was unpickled."""
    calls: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        raise AssertionError("joblib.load was called")

    monkeypatch.setattr(joblib, "load", refuse)
    return calls
