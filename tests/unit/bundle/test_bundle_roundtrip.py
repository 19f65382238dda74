import json
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from bundle_helpers import CARD_CLASSES, make_data, vector_fields
from sklearn.linear_model import LogisticRegression

from ml.bundle import CARD_FILE, BundleError, host_libraries, load_bundle, write_bundle

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_round_trip_predicts_like_the_estimator_in_card_order(
    bundle: Path, classifier: LogisticRegression
) -> None:
    model = load_bundle(bundle)
    x, _ = make_data(n=20, seed=1)
    proba = model.predict_proba({"features": x.tolist()})

    expected = classifier.predict_proba(x)
    by_class = {str(c): expected[:, i] for i, c in enumerate(classifier.classes_)}
    assert proba.shape == (20, 3)
    for j, name in enumerate(CARD_CLASSES):
        np.testing.assert_allclose(proba[:, j], by_class[name])
    assert model.classes == CARD_CLASSES
    assert model.class_labels == {"mid": "Mid", "high": "High", "low": "Low"}
    assert model.input_schema["kind"] == "vector"
    assert model.version == bundle.name


def test_card_records_versions_files_and_nulls(bundle: Path) -> None:
    card = json.loads((bundle / CARD_FILE).read_text())
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", card["version"])
    assert card["libraries"] == host_libraries()
    assert set(card["files"]) == {"model.joblib"}
    assert card["training_data"] is None
    assert card["extra"] == {}


def test_version_is_the_timestamp_plus_a_content_hash(
    tmp_path: Path, classifier: LogisticRegression
) -> None:
    first = write_bundle(tmp_path / "a", classifier, vector_fields(), now=NOW)
    same = write_bundle(tmp_path / "b", classifier, vector_fields(), now=NOW)
    other_state = write_bundle(
        tmp_path / "c", classifier, vector_fields(), {"state.json": b"{}"}, now=NOW
    )
    assert first.name.startswith("20260102T030405Z-")
    assert first.name == same.name
    assert other_state.name != first.name


def test_adapter_files_are_written_and_listed(
    tmp_path: Path, classifier: LogisticRegression
) -> None:
    source = tmp_path / "source.json"
    source.write_text('{"copied": true}')
    out = write_bundle(
        tmp_path / "out",
        classifier,
        vector_fields(),
        {"state.json": b'{"a": 1}', "sub/copied.json": source},
    )
    card = json.loads((out / CARD_FILE).read_text())
    assert set(card["files"]) == {"model.joblib", "adapter/state.json", "adapter/sub/copied.json"}
    assert (out / "adapter/sub/copied.json").read_text() == '{"copied": true}'
    load_bundle(out)


def test_numpy_scalars_in_metrics_become_json_numbers(
    tmp_path: Path, classifier: LogisticRegression
) -> None:
    metrics = {"model": {"log_loss": np.float64(0.25)}, "base_rate": {"log_loss": 1.0}}
    out = write_bundle(tmp_path, classifier, vector_fields(metrics=metrics))
    assert json.loads((out / CARD_FILE).read_text())["metrics"]["model"]["log_loss"] == 0.25


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"version": "x"}, "may not set version"),
        (
            {"classes": ["mid", "other"], "class_labels": {"mid": "M", "other": "O"}},
            "not the estimator's classes_",
        ),
        ({"feature_names": ["x0", "x1"]}, "takes 4 features"),
        ({"metrics": {"model": {"log_loss": float("nan")}}}, "not plain JSON"),
        ({"class_labels": {"mid": "Mid"}}, "class_labels"),
        ({"input_schema": {"kind": "table"}}, "kind must be 'record' or 'vector'"),
    ],
)
def test_write_refuses_bad_card_fields_and_leaves_nothing(
    tmp_path: Path, classifier: LogisticRegression, overrides: dict, message: str
) -> None:
    with pytest.raises(BundleError, match=message):
        write_bundle(tmp_path, classifier, vector_fields(**overrides))
    assert list(tmp_path.iterdir()) == []


def test_a_write_failing_midway_leaves_no_partial_bundle(
    tmp_path: Path, classifier: LogisticRegression
) -> None:
    with pytest.raises(FileNotFoundError):
        write_bundle(tmp_path, classifier, vector_fields(), {"x.json": tmp_path / "absent"})
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(BundleError, match="unsafe path"):
        write_bundle(tmp_path, classifier, vector_fields(), {"../escape.json": b"{}"})
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_an_estimator_without_predict_proba(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a fitted classifier"):
        write_bundle(tmp_path, object(), vector_fields())


def test_loading_through_a_symlink_pins_the_real_directory(tmp_path: Path, bundle: Path) -> None:
    current = tmp_path / "current"
    current.symlink_to(bundle)
    model = load_bundle(current)
    assert model.path == bundle.resolve()
    assert model.version == bundle.name


def test_vector_adapter_rejects_wrong_shapes_and_non_finite(bundle: Path) -> None:
    from ml.adapters import AdapterError

    model = load_bundle(bundle)
    with pytest.raises(AdapterError, match="rows of 4 numbers"):
        model.predict_proba({"features": [[1.0, 2.0]]})
    with pytest.raises(AdapterError, match="finite"):
        model.predict_proba({"features": [[1.0, 2.0, float("nan"), 0.0]]})
    with pytest.raises(AdapterError, match="missing input"):
        model.predict_proba({"other": [[1.0, 2.0, 3.0, 4.0]]})
