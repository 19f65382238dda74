"""Temporal backtest: fit on matches before a cutoff date, score every match from it on.

Three forecasters, same rows: the model (multinomial logistic regression on all features),
`base_rate` (the training outcome frequencies for every match) and `rating_only` (the same
regression on the rating difference alone). Features come from `ml.features`, leak-free by
construction, so a test match's features use earlier test matches' results, as a forecast
made the day before would; the fitted parameters only ever see training rows.
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ml.data import CLASSES
from ml.errors import PalpiteError
from ml.features import FEATURE_NAMES, RATING_FEATURES, build_features

FORECASTERS: tuple[str, ...] = ("model", "base_rate", "rating_only")
WARMUP_SEASONS = 1  # ratings start flat: the data's first season(s) never train a model
DEFAULT_TEST_SEASONS = 3  # without --test-from: test on the last three seasons
CALIBRATION_BINS = 10
_EPS = 1e-15


def make_model() -> Pipeline:
    """The forecaster palpite ships: standardised features, multinomial logistic regression."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))


def probabilities(estimator: Any, features: np.ndarray) -> np.ndarray:
    """predict_proba with columns in CLASSES order (sklearn sorts classes by name)."""
    proba = estimator.predict_proba(features)
    columns = [list(estimator.classes_).index(c) for c in CLASSES]
    return proba[:, columns]


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log probability of the observed class (natural log)."""
    picked = proba[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.clip(picked, _EPS, 1.0))))


def rps(y: np.ndarray, proba: np.ndarray) -> float:
    """Ranked probability score over ordered outcomes (home win < draw < away win)."""
    observed = np.zeros_like(proba)
    observed[np.arange(len(y)), y] = 1.0
    gaps = np.cumsum(proba, axis=1)[:, :-1] - np.cumsum(observed, axis=1)[:, :-1]
    return float(np.mean(np.sum(gaps**2, axis=1)) / (proba.shape[1] - 1))


def accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    return float(np.mean(np.argmax(proba, axis=1) == y))


def calibration(y: np.ndarray, proba: np.ndarray, bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Per class, binned predicted probability against observed frequency, and the
    class-wise expected calibration error (count-weighted mean gap, averaged over classes).
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    per_class: dict[str, list[dict[str, float]]] = {}
    gaps = []
    for k, name in enumerate(CLASSES):
        p = proba[:, k]
        hit = (y == k).astype(np.float64)
        which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
        counts = np.bincount(which, minlength=bins)
        mean_p = np.bincount(which, weights=p, minlength=bins)
        freq = np.bincount(which, weights=hit, minlength=bins)
        rows = []
        gap = 0.0
        for b in np.flatnonzero(counts):
            mp, fr = mean_p[b] / counts[b], freq[b] / counts[b]
            gap += counts[b] * abs(mp - fr)
            rows.append(
                {"from": float(edges[b]), "to": float(edges[b + 1]), "n": int(counts[b]),
                 "predicted": float(mp), "observed": float(fr)}
            )  # fmt: skip
        per_class[name] = rows
        gaps.append(gap / max(len(y), 1))
    return {"ece": float(np.mean(gaps)), "bins": per_class}


@dataclass(frozen=True)
class Split:
    test_from: dt.date
    train: np.ndarray  # boolean masks over the matches table
    test: np.ndarray


def default_test_from(matches: pd.DataFrame) -> dt.date:
    """The first day of the third-to-last season (or of the second season if fewer)."""
    seasons = sorted(matches["season"].unique())
    if len(seasons) <= WARMUP_SEASONS:
        raise PalpiteError("need at least two seasons of matches to backtest")
    pick = seasons[max(WARMUP_SEASONS, len(seasons) - DEFAULT_TEST_SEASONS)]
    return matches.loc[matches["season"] == pick, "date"].min().date()


def split(matches: pd.DataFrame, test_from: dt.date) -> Split:
    first_seasons = sorted(matches["season"].unique())[:WARMUP_SEASONS]
    cutoff = pd.Timestamp(test_from)
    train = (matches["date"] < cutoff) & ~matches["season"].isin(first_seasons)
    test = matches["date"] >= cutoff
    span = f"{matches['date'].min():%Y-%m-%d} to {matches['date'].max():%Y-%m-%d}"
    if not test.any():
        raise PalpiteError(f"no matches on or after {test_from} to test on (data: {span})")
    if not train.any():
        raise PalpiteError(
            f"no matches before {test_from} to train on after the first season's warm-up "
            f"(data: {span})"
        )
    return Split(test_from, train.to_numpy(), test.to_numpy())


def outcome_codes(matches: pd.DataFrame) -> np.ndarray:
    return pd.Categorical(matches["outcome"], categories=list(CLASSES)).codes.astype(np.int64)


def score(y: np.ndarray, proba: np.ndarray, n_train: int) -> dict[str, Any]:
    return {
        "log_loss": log_loss(y, proba),
        "rps": rps(y, proba),
        "accuracy": accuracy(y, proba),
        "n_train": int(n_train),
        "n_test": len(y),
        "ece": calibration(y, proba)["ece"],
    }


@dataclass(frozen=True)
class Backtest:
    test_from: dt.date
    metrics: dict[str, dict[str, Any]]  # forecaster -> score()
    calibration: dict[str, Any]  # the model's calibration() on the test rows


def backtest(
    matches: pd.DataFrame, test_from: dt.date, features: pd.DataFrame | None = None
) -> Backtest:
    """Fit the three forecasters on matches before `test_from`; score them on the rest."""
    sp = split(matches, test_from)
    if features is None:
        features = build_features(matches)
    x = features.loc[:, list(FEATURE_NAMES)].to_numpy()
    labels = matches["outcome"].to_numpy()
    y = outcome_codes(matches)
    y_test = y[sp.test]
    n_train = int(sp.train.sum())
    if len(np.unique(y[sp.train])) < len(CLASSES):
        raise PalpiteError("the training matches do not contain every outcome")

    model = make_model().fit(x[sp.train], labels[sp.train])
    model_p = probabilities(model, x[sp.test])

    rating_cols = [FEATURE_NAMES.index(f) for f in RATING_FEATURES]
    rating = make_model().fit(x[sp.train][:, rating_cols], labels[sp.train])
    rating_p = probabilities(rating, x[sp.test][:, rating_cols])

    freq = np.bincount(y[sp.train], minlength=len(CLASSES)) / n_train
    base_p = np.tile(freq, (len(y_test), 1))

    metrics = {
        "model": score(y_test, model_p, n_train),
        "base_rate": score(y_test, base_p, n_train),
        "rating_only": score(y_test, rating_p, n_train),
    }
    return Backtest(test_from, metrics, calibration(y_test, model_p))
