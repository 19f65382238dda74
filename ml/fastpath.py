"""A numpy fast path for the estimators bundles usually hold, checked against sklearn.

scikit-learn spends about a millisecond per `predict_proba` call on validation (input
checks, feature-name checks, tags) whatever the size of the input: for a single-row
request that is most of the service's time. For a pipeline of StandardScaler steps ending
in a LogisticRegression, the probabilities are one affine map and a softmax, so
`fast_predict_proba` folds the scalers into the coefficients once, at model load.

It is only used when it agrees with the estimator's own `predict_proba` on a probe batch
(to `PROBE_TOLERANCE`); any other estimator, or one that disagrees, is served by
scikit-learn itself, with the per-call checks the service has already made (finite
values, the right width) switched off.
"""

import math
from collections.abc import Callable
from operator import mul

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

PredictProba = Callable[[np.ndarray], np.ndarray]
# One row of Python floats to its probabilities, or None where it cannot say (overflow).
PredictRow = Callable[[list[float]], list[float] | None]
PROBE_ROWS = 256
PROBE_TOLERANCE = 1e-9
# Weights (features x outputs) up to this many go through the pure-Python single-row path:
# below it, numpy's per-call overhead costs more than the arithmetic.
ROW_PATH_MAX_WEIGHTS = 256


def predict_proba_function(estimator: object) -> PredictProba:
    """The fastest verified way to call `estimator.predict_proba` on a float matrix."""
    return fast_predict_proba(estimator) or _sklearn_predict_proba(estimator)


def _sklearn_predict_proba(estimator: object) -> PredictProba:
    predict_proba = estimator.predict_proba  # type: ignore[attr-defined]

    def call(x: np.ndarray) -> np.ndarray:
        # The service validated the values (finite, right columns) before this call.
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return predict_proba(x)

    return call


def fast_predict_proba(estimator: object) -> PredictProba | None:
    """A numpy equivalent of `estimator.predict_proba`, or None if there is none."""
    folded = _fold_linear(estimator)
    if folded is None:
        return None
    weights, bias = folded
    call = _binary(weights, bias) if weights.shape[1] == 1 else _softmax(weights, bias)
    if not _agrees(estimator, call, weights.shape[0]):
        return None
    return call


def row_predict_proba(estimator: object) -> PredictRow | None:
    """A pure-Python (no numpy) `predict_proba` for one row of a small folded linear model,
    or None. Like the numpy path, used only when it agrees with the estimator on the probe
    batch; a single prediction then costs a few microseconds, not numpy's dozen."""
    folded = _fold_linear(estimator)
    if folded is None or folded[0].size > ROW_PATH_MAX_WEIGHTS:
        return None
    weights, bias = folded
    call = _row_binary(weights, bias) if weights.shape[1] == 1 else _row_softmax(weights, bias)

    def rows(x: np.ndarray) -> np.ndarray:
        out = [call(row) for row in x.tolist()]
        if any(r is None for r in out):
            raise FloatingPointError("overflow in the probe")
        return np.asarray(out, dtype=np.float64)

    return call if _agrees(estimator, rows, weights.shape[0]) else None


def _row_binary(weights: np.ndarray, bias: np.ndarray) -> PredictRow:
    column, b = weights[:, 0].tolist(), float(bias[0])

    def call(x: list[float]) -> list[float] | None:
        try:
            positive = 1.0 / (1.0 + math.exp(-(sum(map(mul, x, column)) + b)))
        except OverflowError:
            return None
        return [1.0 - positive, positive]

    return call


def _row_softmax(weights: np.ndarray, bias: np.ndarray) -> PredictRow:
    columns = [(col, b) for col, b in zip(weights.T.tolist(), bias.tolist(), strict=True)]
    exp = math.exp

    def call(x: list[float]) -> list[float] | None:
        scores = [sum(map(mul, x, col)) + b for col, b in columns]
        top = max(scores)
        exps = [exp(s - top) for s in scores]  # <= 1: no overflow
        total = sum(exps)
        return [e / total for e in exps]

    return call


def _fold_linear(estimator: object) -> tuple[np.ndarray, np.ndarray] | None:
    """(weights (n_features, n_outputs), bias) of scalers + logistic regression, or None."""
    steps = [s for _, s in estimator.steps] if isinstance(estimator, Pipeline) else [estimator]
    steps = [s for s in steps if s not in (None, "passthrough")]
    if not steps or type(steps[-1]) is not LogisticRegression:
        return None
    model = steps[-1]
    if not hasattr(model, "coef_") or getattr(model, "multi_class", "auto") == "ovr":
        return None
    weights = np.asarray(model.coef_, dtype=np.float64).T.copy()
    bias = np.asarray(model.intercept_, dtype=np.float64).copy()
    # Fold the scalers in from the last to the first: w . (x - m) / s = (w / s) . x - ...
    for scaler in reversed(steps[:-1]):
        if type(scaler) is not StandardScaler or not hasattr(scaler, "n_features_in_"):
            return None
        if scaler.with_std:
            weights = weights / np.reshape(scaler.scale_, (-1, 1))
        if scaler.with_mean:
            bias = bias - np.asarray(scaler.mean_) @ weights
    return weights, bias


def _binary(weights: np.ndarray, bias: np.ndarray) -> PredictProba:
    def call(x: np.ndarray) -> np.ndarray:
        positive = 1.0 / (1.0 + np.exp(-(x @ weights + bias)[:, 0]))
        return np.column_stack([1.0 - positive, positive])

    return call


def _softmax(weights: np.ndarray, bias: np.ndarray) -> PredictProba:
    def call(x: np.ndarray) -> np.ndarray:
        scores = x @ weights + bias
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        return scores

    return call


def _agrees(estimator: object, call: PredictProba, n_features: int) -> bool:
    """Both paths on a probe batch spread over the inputs the estimator was fitted on."""
    center, spread = np.zeros(n_features), np.ones(n_features)
    if isinstance(estimator, Pipeline):
        first = estimator.steps[0][1]
        if isinstance(first, StandardScaler):
            center = first.mean_ if first.with_mean else center
            spread = first.scale_ if first.with_std else spread
    rng = np.random.default_rng(0)
    probe = center + spread * rng.normal(scale=3.0, size=(PROBE_ROWS, n_features))
    try:
        expected = np.asarray(estimator.predict_proba(probe), dtype=np.float64)
        got = call(probe)
    except Exception:  # any failure means: serve through scikit-learn
        return False
    return got.shape == expected.shape and bool(np.abs(got - expected).max() <= PROBE_TOLERANCE)
