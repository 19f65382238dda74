"""Bundles and clients for the app tests.

Bundles are built once per session with the project's own tools: `ml.package` for a
plain numeric classifier (vector schema) and `ml.bundle.write_bundle` with a test-only
record adapter (record_adapter.py) for named fields.
"""

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest
from fastapi.testclient import TestClient
from record_adapter import TEAMS
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import SplineTransformer

import ml.adapters
from app.main import create_app
from app.settings import Settings
from ml.bundle import write_bundle
from ml.package import package_estimator

CLASSES = ["home_win", "draw", "away_win"]


@pytest.fixture(scope="session", autouse=True)
def _register_record_adapter() -> Iterator[None]:
    ml.adapters.ADAPTERS["test-record"] = "record_adapter:RecordAdapter"
    yield
    ml.adapters.ADAPTERS.pop("test-record", None)


@pytest.fixture(scope="session")
def vector_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a user with their own model gets from `python -m ml package`."""
    work = tmp_path_factory.mktemp("vector")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4))
    y = np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")
    joblib.dump(LogisticRegression().fit(x, y), work / "clf.joblib")
    (work / "schema.json").write_text(
        json.dumps({"kind": "vector", "name": "features", "length": 4})
    )
    return package_estimator(
        work / "clf.joblib", work / "schema.json", work / "bundles", name="clf"
    )


def record_card_fields() -> dict:
    return {
        "name": "test-record",
        "adapter": {"kind": "test-record", "feature_code_version": None},
        "input_schema": {
            "kind": "record",
            "fields": [
                {"name": "home_team", "type": "string", "label": "Home team", "enum": TEAMS},
                {"name": "away_team", "type": "string", "label": "Away team", "enum": TEAMS},
                {
                    "name": "temperature",
                    "type": "number",
                    "label": "Temperature",
                    "minimum": -30,
                    "maximum": 50,
                },
            ],
            "distinct": [["home_team", "away_team"]],
        },
        "feature_names": ["home_index", "away_index", "temperature"],
        "classes": CLASSES,
        "class_labels": {"home_win": "Home win", "draw": "Draw", "away_win": "Away win"},
        "training_data": {
            "sha256": "0" * 64,
            "rows": 1200,
            "date_from": "2003-03-29",
            "date_to": "2024-12-08",
        },
        "metrics": {
            "test_from": "2022-01-01",
            "model": {"log_loss": 0.98, "rps": 0.21, "accuracy": 0.51, "n_test": 300},
            "base_rate": {"log_loss": 1.05, "rps": 0.24, "accuracy": 0.46, "n_test": 300},
        },
    }


@pytest.fixture(scope="session")
def record_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(2)
    home = rng.integers(0, len(TEAMS), 600)
    away = (home + rng.integers(1, len(TEAMS), 600)) % len(TEAMS)
    temp = rng.uniform(-5, 35, 600)
    x = np.column_stack([home, away, temp]).astype(float)
    y = np.array(CLASSES)[(home + 2 * away) % 3]
    clf = LogisticRegression(max_iter=1000).fit(x, y)
    return write_bundle(tmp_path_factory.mktemp("record") / "bundles", clf, record_card_fields())


@pytest.fixture(scope="session")
def pairs_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two enum fields and nothing else, like the football model: every valid instance
    (each ordered pair of distinct teams) is known in advance."""
    fields = record_card_fields()
    fields["input_schema"]["fields"] = fields["input_schema"]["fields"][:2]
    fields["feature_names"] = ["home_index", "away_index"]
    rng = np.random.default_rng(3)
    home = rng.integers(0, len(TEAMS), 600)
    away = (home + rng.integers(1, len(TEAMS), 600)) % len(TEAMS)
    x = np.column_stack([home, away]).astype(float)
    y = np.array(CLASSES)[(home + 2 * away) % 3]
    clf = LogisticRegression(max_iter=1000).fit(x, y)
    return write_bundle(tmp_path_factory.mktemp("pairs") / "bundles", clf, fields)


@pytest.fixture(scope="session")
def pairs_bundle_failing_for_one_team(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pairs contract with stock scikit-learn objects that raise for every pairing
    whose home team is the last one (its index lies beyond the range a SplineTransformer
    with extrapolation="error" was fitted on) and answer every other pairing."""
    fields = record_card_fields()
    fields["input_schema"]["fields"] = fields["input_schema"]["fields"][:2]
    fields["feature_names"] = ["home_index", "away_index"]
    last = len(TEAMS) - 1
    x = np.array([[home, away] for home in range(last) for away in range(len(TEAMS))], float)
    seen_homes = ColumnTransformer([("home", SplineTransformer(extrapolation="error"), [0])])
    clf = Pipeline([("seen_homes", seen_homes), ("prior", DummyClassifier())])
    clf.fit(x, np.array(CLASSES)[np.arange(len(x)) % 3])
    return write_bundle(tmp_path_factory.mktemp("failing") / "bundles", clf, fields)


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client() -> Iterator[ClientFactory]:
    clients: list[TestClient] = []

    def make(model_dir: Path, **settings: object) -> TestClient:
        client = TestClient(create_app(Settings(model_dir=model_dir, **settings)))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def record_client(make_client: ClientFactory, record_bundle: Path) -> TestClient:
    return make_client(record_bundle)


@pytest.fixture
def vector_client(make_client: ClientFactory, vector_bundle: Path) -> TestClient:
    return make_client(vector_bundle)


@pytest.fixture
def empty_client(make_client: ClientFactory, tmp_path: Path) -> TestClient:
    return make_client(tmp_path / "models" / "current")
