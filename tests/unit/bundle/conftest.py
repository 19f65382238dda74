"""Fixtures for the bundle tests: a small fitted classifier and bundles made from it."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import pytest
from bundle_helpers import make_data, vector_fields
from sklearn.linear_model import LogisticRegression

from ml.bundle import CARD_FILE, write_bundle


@pytest.fixture(scope="session")
def classifier() -> LogisticRegression:
    x, y = make_data()
    return LogisticRegression(max_iter=500).fit(x, y)


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
