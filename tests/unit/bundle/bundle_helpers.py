"""Data and card fields shared by the bundle tests (imported by name, unlike conftest)."""

from typing import Any

import numpy as np

# Card order differs from the estimator's sorted classes_, so reordering is exercised.
CARD_CLASSES = ["mid", "high", "low"]
FEATURES = ["x0", "x1", "x2", "x3"]


def make_data(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = np.select([x[:, 0] > 0.5, x[:, 0] < -0.5], ["high", "low"], "mid")
    return x, y


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
