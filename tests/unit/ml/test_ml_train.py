"""`train`: backtest gate, fit, and a bundle that serves what the pipeline computes."""

import csv
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.adapters import AdapterError
from ml.bundle import LoadedModel, load_bundle
from ml.cli import main
from ml.data import CLASSES
from ml.evaluate import make_model
from ml.features import FEATURE_CODE_VERSION, FEATURE_NAMES
from ml.train import fit_rows


@pytest.fixture(scope="module")
def trained(league_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LoadedModel]:
    out = tmp_path_factory.mktemp("bundles")
    assert main(["train", "--data", str(league_csv), "--out", str(out)]) == 0
    (bundle_dir,) = out.iterdir()
    return bundle_dir, load_bundle(bundle_dir)


def test_card(trained: tuple[Path, LoadedModel], league_csv: Path, matches: pd.DataFrame) -> None:
    bundle_dir, model = trained
    card = model.card
    assert bundle_dir.name == card["version"]
    assert card["name"] == "brasileirao-outcome"
    assert card["adapter"] == {"kind": "football", "feature_code_version": FEATURE_CODE_VERSION}
    assert card["classes"] == list(CLASSES)
    assert card["feature_names"] == list(FEATURE_NAMES)
    data = card["training_data"]
    assert data["sha256"] == hashlib.sha256(league_csv.read_bytes()).hexdigest()
    assert data["rows"] == len(matches)
    assert data["date_from"] == f"{matches['date'].min():%Y-%m-%d}"
    assert data["date_to"] == f"{matches['date'].max():%Y-%m-%d}"
    metrics = card["metrics"]
    assert (
        metrics["test_from"] == f"{matches.loc[matches['season'] == 2022, 'date'].min():%Y-%m-%d}"
    )
    for name in ("model", "base_rate", "rating_only"):
        assert {"log_loss", "rps", "accuracy", "n_train", "n_test"} <= set(metrics[name])
    assert metrics["model"]["log_loss"] < metrics["base_rate"]["log_loss"]


def test_input_schema_offers_the_last_seasons_clubs(
    trained: tuple[Path, LoadedModel], matches: pd.DataFrame
) -> None:
    schema = trained[1].input_schema
    last = matches[matches["season"] == matches["season"].max()]
    assert schema["kind"] == "record"
    assert [f["name"] for f in schema["fields"]] == ["home_team", "away_team"]
    for field in schema["fields"]:
        assert field["type"] == "string"
        assert field["enum"] == sorted(set(last["home_team"]))
    assert schema["distinct"] == [["home_team", "away_team"]]


def test_bundle_serves_what_the_pipeline_computes(
    tmp_path: Path,
    league_raw: pd.DataFrame,
    matches: pd.DataFrame,
    features: pd.DataFrame,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Train on matches before a day; the bundle's predictions for that day's fixtures,
    from names alone, equal the fitted model applied to the pipeline's features."""
    day = matches["date"].iloc[7000]
    before = league_raw[pd.to_datetime(league_raw["data"], format="%d/%m/%Y") < day]
    data = tmp_path / "before.csv"
    before.to_csv(data, index=False, quoting=csv.QUOTE_ALL)
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "b")]) == 0
    (bundle_dir,) = (tmp_path / "b").iterdir()
    assert capsys.readouterr().out == f"{bundle_dir}\n"
    model = load_bundle(bundle_dir)

    on_day = (matches["date"] == day).to_numpy()
    fixtures = {
        "home_team": list(matches.loc[on_day, "home_team"]),
        "away_team": list(matches.loc[on_day, "away_team"]),
    }
    served = model.predict_proba(fixtures)
    x = features.loc[on_day, list(FEATURE_NAMES)].to_numpy()
    # The same features exactly; the probabilities to rounding (serving folds the scaler
    # into the coefficients: ml/fastpath.py).
    assert np.array_equal(model.adapter.transform(fixtures), x)
    order = [list(model.estimator.classes_).index(c) for c in model.classes]
    np.testing.assert_allclose(served, model.estimator.predict_proba(x)[:, order], atol=1e-12)
    np.testing.assert_allclose(served.sum(axis=1), 1.0)


def test_final_fit_uses_every_match_after_the_warmup(
    trained: tuple[Path, LoadedModel], matches: pd.DataFrame, features: pd.DataFrame
) -> None:
    rows = fit_rows(matches)
    assert rows.sum() == len(matches) - 552
    assert trained[1].card["training_data"]["fit_rows"] == rows.sum()
    x_fit = features.loc[rows, list(FEATURE_NAMES)].to_numpy()
    refit = make_model().fit(x_fit, matches.loc[rows, "outcome"].to_numpy())
    x = features[list(FEATURE_NAMES)].to_numpy()[-50:]
    np.testing.assert_allclose(trained[1].estimator.predict_proba(x), refit.predict_proba(x))


def test_a_10000_row_batch(trained: tuple[Path, LoadedModel]) -> None:
    model = trained[1]
    teams = model.input_schema["fields"][0]["enum"]
    rng = np.random.default_rng(0)
    home = rng.integers(0, len(teams), 10_000)
    away = (home + rng.integers(1, len(teams), 10_000)) % len(teams)  # never the home side
    names = np.array(teams, dtype=object)
    proba = model.predict_proba(
        {"home_team": names[home].tolist(), "away_team": names[away].tolist()}
    )
    assert proba.shape == (10_000, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_adapter_rejects_bad_input(trained: tuple[Path, LoadedModel]) -> None:
    model = trained[1]
    a, b = model.input_schema["fields"][0]["enum"][:2]
    with pytest.raises(AdapterError, match="unknown team"):
        model.predict_proba({"home_team": [a], "away_team": ["Nowhere United"]})
    with pytest.raises(AdapterError, match="missing input 'away_team'"):
        model.predict_proba({"home_team": [a]})
    with pytest.raises(AdapterError, match="cannot play itself"):
        model.predict_proba({"home_team": [a, b], "away_team": [b, b]})


def test_gate_refuses_a_model_short_of_the_margin(
    league_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bundles"
    assert main(["train", "--data", str(league_csv), "--out", str(out),
                 "--min-improvement", "0.5"]) == 1  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: quality gate: model log loss")
    assert not out.exists() or list(out.iterdir()) == []


def test_gate_refuses_a_useless_model(
    league_raw: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scores shuffled across matches: the features say nothing about the outcome."""
    raw = league_raw.copy()
    perm = np.random.default_rng(5).permutation(len(raw))
    for column in ("mandante_Placar", "visitante_Placar"):
        raw[column] = raw[column].to_numpy()[perm]
    data = tmp_path / "noise.csv"
    raw.to_csv(data, index=False, quoting=csv.QUOTE_ALL)
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "b")]) == 1
    assert "quality gate" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "b").exists() or list((tmp_path / "b").iterdir()) == []
