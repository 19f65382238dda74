"""`package`: wrap any fitted scikit-learn classifier and an input schema as a bundle.

This is the path for a user's own model (no football, no pipeline): the bundle gets a
`vector` adapter and null training data and metrics, so `publish` asks for
`--allow-unevaluated` before shipping it.
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from ml.bundle_write import write_bundle
from ml.card import BundleError, check_input_schema
from ml.errors import PalpiteError

DEFAULT_OUT = Path("artifacts/bundles")


def parse_pairs(pairs: Sequence[str], option: str) -> dict[str, str]:
    """KEY=VALUE strings to a dict; a malformed or repeated key is a PalpiteError."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PalpiteError(f"{option} wants KEY=VALUE, got {pair!r}")
        if key in result:
            raise PalpiteError(f"{option}: {key!r} given twice")
        result[key] = value
    return result


def read_vector_schema(path: Path) -> dict[str, Any]:
    """The schema file, with default feature names x0..x{n-1} filled in."""
    try:
        schema = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise PalpiteError(f"cannot read schema {path}: {exc}") from None
    if not isinstance(schema, dict) or schema.get("kind") != "vector":
        kind = schema.get("kind") if isinstance(schema, dict) else None
        raise PalpiteError(f"{path}: package takes a vector input schema, not {kind!r}")
    length = schema.get("length")
    if isinstance(length, int) and "feature_names" not in schema:
        schema["feature_names"] = [f"x{i}" for i in range(length)]
    try:
        check_input_schema(schema)
    except BundleError as exc:
        raise PalpiteError(f"{path}: {exc}") from None
    return schema


def _load_estimator(path: Path, length: int) -> Any:
    # The user's own file: unpickling it is as trusted as running their code.
    try:
        estimator = joblib.load(path)
    except Exception as exc:
        raise PalpiteError(f"cannot load estimator {path}: {exc}") from None
    name = type(estimator).__name__
    if not callable(getattr(estimator, "predict_proba", None)) or not hasattr(
        estimator, "classes_"
    ):
        raise PalpiteError(f"{path}: {name} is not a fitted classifier with predict_proba")
    n_in = getattr(estimator, "n_features_in_", length)
    if n_in != length:
        raise PalpiteError(f"{path}: {name} takes {n_in} features, the schema gives {length}")
    try:
        proba = estimator.predict_proba(np.zeros((1, length)))
    except Exception as exc:
        raise PalpiteError(f"{path}: {name} failed a smoke prediction: {exc}") from None
    if np.shape(proba) != (1, len(estimator.classes_)):
        raise PalpiteError(f"{path}: predict_proba returned shape {np.shape(proba)}")
    return estimator


def package_estimator(
    estimator_path: Path,
    schema_path: Path,
    out_dir: Path = DEFAULT_OUT,
    *,
    name: str | None = None,
    extra: Mapping[str, str] | None = None,
    class_labels: Mapping[str, str] | None = None,
) -> Path:
    """Write a bundle for a fitted classifier on a numeric vector; returns its directory."""
    schema = read_vector_schema(schema_path)
    estimator = _load_estimator(estimator_path, schema["length"])
    classes = [str(c) for c in estimator.classes_]
    labels = dict(class_labels or {})
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise PalpiteError(f"--class-label names unknown classes {unknown}; classes: {classes}")
    return write_bundle(
        out_dir,
        estimator,
        {
            "name": name or Path(estimator_path).stem,
            "adapter": {"kind": "vector", "feature_code_version": None},
            "input_schema": schema,
            "feature_names": schema["feature_names"],
            "classes": classes,
            "class_labels": {c: labels.get(c, c) for c in classes},
            "training_data": None,
            "metrics": None,
            "extra": dict(extra or {}),
        },
    )
