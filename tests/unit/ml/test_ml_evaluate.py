"""Scores, the temporal backtest, and the `evaluate` command's JSON contract."""

import datetime as dt
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.cli import main
from ml.errors import PalpiteError
from ml.evaluate import (
    Backtest,
    backtest,
    calibration,
    default_test_from,
    log_loss,
    outcome_codes,
    rps,
)

HOME, DRAW, AWAY = 0, 1, 2
UNIFORM = np.full((1, 3), 1 / 3)


def test_log_loss() -> None:
    assert log_loss(np.array([HOME]), UNIFORM) == pytest.approx(math.log(3))
    assert log_loss(np.array([DRAW]), np.array([[0.0, 1.0, 0.0]])) == pytest.approx(0.0)
    # A confident miss is clipped, not infinite.
    assert math.isfinite(log_loss(np.array([AWAY]), np.array([[1.0, 0.0, 0.0]])))


def test_rps_respects_the_order_of_outcomes() -> None:
    assert rps(np.array([HOME]), np.array([[1.0, 0.0, 0.0]])) == 0.0
    # Uniform forecast: cumulative gaps (1/3 - 1, 2/3 - 1) for a home win, averaged over 2.
    assert rps(np.array([HOME]), UNIFORM) == pytest.approx(((2 / 3) ** 2 + (1 / 3) ** 2) / 2)
    # Calling a draw is a nearer miss of a home win than calling an away win.
    near = rps(np.array([HOME]), np.array([[0.0, 1.0, 0.0]]))
    far = rps(np.array([HOME]), np.array([[0.0, 0.0, 1.0]]))
    assert near == pytest.approx(0.5)
    assert far == pytest.approx(1.0)


def test_calibration_error_is_small_only_for_honest_probabilities() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet([4, 2, 2], size=20_000)
    honest = np.array([rng.choice(3, p=p) for p in proba])
    assert calibration(honest, proba)["ece"] < 0.02
    overconfident = np.clip(proba * 1.6 - 0.2, 0.01, None)
    overconfident /= overconfident.sum(axis=1, keepdims=True)
    assert calibration(honest, overconfident)["ece"] > 0.05
    bins = calibration(honest, proba)["bins"]["home_win"]
    assert sum(b["n"] for b in bins) == len(honest)


@pytest.fixture(scope="module")
def result(matches: pd.DataFrame, features: pd.DataFrame) -> Backtest:
    return backtest(matches, default_test_from(matches), features)


def test_model_beats_both_baselines(result: Backtest) -> None:
    m = result.metrics
    for baseline in ("base_rate", "rating_only"):
        assert m["model"]["log_loss"] < m[baseline]["log_loss"], baseline
        assert m["model"]["rps"] < m[baseline]["rps"], baseline


def test_model_beats_both_baselines_over_a_longer_test(
    matches: pd.DataFrame, features: pd.DataFrame
) -> None:
    m = backtest(matches, dt.date(2016, 1, 1), features).metrics
    for baseline in ("base_rate", "rating_only"):
        assert m["model"]["log_loss"] < m[baseline]["log_loss"], baseline
        assert m["model"]["rps"] < m[baseline]["rps"], baseline


def test_split_and_base_rates(matches: pd.DataFrame, result: Backtest) -> None:
    """Three seasons to test; training is everything before, minus the warm-up season."""
    assert result.test_from == matches.loc[matches["season"] == 2022, "date"].min().date()
    cutoff = pd.Timestamp(result.test_from)
    train = (matches["date"] < cutoff) & (matches["season"] > 2003)
    test = matches["date"] >= cutoff
    for name in ("model", "base_rate", "rating_only"):
        assert result.metrics[name]["n_train"] == train.sum()
        assert result.metrics[name]["n_test"] == test.sum() == 3 * 380
    y = outcome_codes(matches)
    freq = np.bincount(y[train.to_numpy()], minlength=3) / train.sum()
    expected = -np.mean(np.log(freq[y[test.to_numpy()]]))
    assert result.metrics["base_rate"]["log_loss"] == pytest.approx(expected)


def test_cutoffs_without_train_or_test_matches(matches: pd.DataFrame) -> None:
    with pytest.raises(PalpiteError, match="no matches on or after 2030-01-01 to test on"):
        backtest(matches, dt.date(2030, 1, 1))
    with pytest.raises(PalpiteError, match="no matches before 2003-06-01 to train on"):
        backtest(matches, dt.date(2003, 6, 1))


def test_evaluate_json_contract(league_csv: Path) -> None:
    """The exact command an outside check runs: one JSON object on stdout, nothing else."""
    done = subprocess.run(
        [sys.executable, "-m", "ml", "evaluate", "--data", str(league_csv),
         "--test-from", "2022-01-01", "--json"],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    assert len(done.stdout.strip().splitlines()) == 1
    report = json.loads(done.stdout)
    assert set(report) == {"model", "base_rate", "rating_only"}
    for scores in report.values():
        for key in ("log_loss", "rps", "accuracy"):
            assert isinstance(scores[key], float) and 0 < scores[key] < 2
        assert isinstance(scores["n_train"], int) and scores["n_train"] > 5000
        assert scores["n_test"] == 3 * 380
    assert "backtest from 2022-01-01" in done.stderr


def test_evaluate_report(
    league_csv: Path, matches: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", "--data", str(league_csv)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"test from {default_test_from(matches)}"
    for line in ("model", "base_rate", "rating_only", "calibration", "draw"):
        assert line in out
