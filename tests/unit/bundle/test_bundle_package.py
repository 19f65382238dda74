import argparse
import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from bundle_helpers import make_data
from sklearn.linear_model import LogisticRegression

from ml.bundle import CARD_FILE, load_bundle
from ml.cli_bundle import add_package_parser
from ml.errors import PalpiteError
from ml.package import package_estimator


@pytest.fixture
def user_model(tmp_path: Path) -> tuple[Path, Path, LogisticRegression]:
    """What a user brings: a plain numeric classifier on 4 features and a schema file."""
    x, y = make_data(n=200, seed=5)
    estimator = LogisticRegression(max_iter=500).fit(x, y)
    est_path = tmp_path / "iris-like.joblib"
    joblib.dump(estimator, est_path)
    schema_path = tmp_path / "schema.json"
    schema_path.write_text(json.dumps({"kind": "vector", "name": "features", "length": 4}))
    return est_path, schema_path, estimator


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_package_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_package_builds_a_bundle_that_loads_and_predicts(
    tmp_path: Path, user_model: tuple[Path, Path, LogisticRegression]
) -> None:
    est_path, schema_path, estimator = user_model
    out = tmp_path / "bundles"
    bundle = package_estimator(
        est_path, schema_path, out, extra={"owner": "ds-team"}, class_labels={"high": "High"}
    )
    assert bundle.parent == out

    model = load_bundle(bundle)
    rows = [[1.0, 2.0, 3.0, 4.0], [-2.0, 0.0, 0.0, 0.0]]
    np.testing.assert_allclose(
        model.predict_proba({"features": rows}), estimator.predict_proba(rows)
    )
    card = model.card
    assert card["name"] == "iris-like"
    assert card["adapter"] == {"kind": "vector", "feature_code_version": None}
    assert card["input_schema"]["feature_names"] == ["x0", "x1", "x2", "x3"]
    assert card["class_labels"] == {"high": "High", "low": "low", "mid": "mid"}
    assert card["metrics"] is None and card["training_data"] is None
    assert card["extra"] == {"owner": "ds-team"}


def test_package_cli_prints_the_bundle_directory(
    tmp_path: Path,
    user_model: tuple[Path, Path, LogisticRegression],
    capsys: pytest.CaptureFixture[str],
) -> None:
    est_path, schema_path, _ = user_model
    args = _cli(
        [
            "package",
            "--estimator", str(est_path),
            "--schema", str(schema_path),
            "--name", "my-model",
            "--card-extra", "ticket=ML-42",
            "--out", str(tmp_path / "out"),
        ]
    )  # fmt: skip
    assert args.func(args) == 0
    printed = Path(capsys.readouterr().out.strip())
    card = json.loads((printed / CARD_FILE).read_text())
    assert card["name"] == "my-model"
    assert card["extra"] == {"ticket": "ML-42"}


def _write(path: Path, content: Any) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.mark.parametrize(
    ("schema", "extra", "message"),
    [
        ({"kind": "vector", "name": "features", "length": 3}, [], "takes 4 features, the schema"),
        ({"kind": "record", "fields": []}, [], "vector input schema, not 'record'"),
        ({"kind": "vector", "name": "f", "length": 4, "feature_names": ["a"]}, [], "4 names"),
        ("{oops", [], "cannot read schema"),
        ({"kind": "vector", "name": "features", "length": 4}, ["novalue"], "wants KEY=VALUE"),
        ({"kind": "vector", "name": "features", "length": 4}, ["a=1", "a=2"], "given twice"),
    ],
)
def test_package_errors_are_one_line_palpite_errors(
    tmp_path: Path,
    user_model: tuple[Path, Path, LogisticRegression],
    schema: Any,
    extra: list[str],
    message: str,
) -> None:
    est_path, _, _ = user_model
    schema_path = _write(tmp_path / "bad-schema.json", schema)
    argv = ["package", "--estimator", str(est_path), "--schema", str(schema_path)]
    args = _cli(argv + [f"--card-extra={e}" for e in extra] + ["--out", str(tmp_path / "out")])
    with pytest.raises(PalpiteError, match=message) as info:
        args.func(args)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_package_refuses_something_that_is_not_a_classifier(
    tmp_path: Path, user_model: tuple[Path, Path, LogisticRegression]
) -> None:
    _, schema_path, _ = user_model
    not_model = tmp_path / "list.joblib"
    joblib.dump([1, 2, 3], not_model)
    with pytest.raises(PalpiteError, match="not a fitted classifier"):
        package_estimator(not_model, schema_path, tmp_path / "out")
    with pytest.raises(PalpiteError, match="cannot load estimator"):
        package_estimator(tmp_path / "absent.joblib", schema_path, tmp_path / "out")
