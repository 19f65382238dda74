"""The numpy fast path gives scikit-learn's probabilities, and only where it can."""

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from ml.fastpath import (
    ROW_PATH_MAX_WEIGHTS,
    fast_predict_proba,
    predict_proba_function,
    row_predict_proba,
)


def data(classes: int, n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # Columns on very different scales and offsets, so the folded scaler matters.
    x = rng.normal(size=(n, 5)) * np.geomspace(0.01, 1000, 5) + np.arange(5) * 50
    cuts = np.quantile(x[:, 0], np.linspace(0, 1, classes + 1)[1:-1])
    y = np.digitize(x[:, 0] + rng.normal(scale=0.01, size=n), cuts)
    return x, np.array(["a", "b", "c", "d"])[y]


# Unscaled columns leave lbfgs short of convergence: the fitted model is still a model.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("classes", [2, 3, 4])
@pytest.mark.parametrize(
    "make",
    [
        lambda: LogisticRegression(max_iter=2000),
        lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        lambda: make_pipeline(StandardScaler(with_mean=False), LogisticRegression(C=0.1)),
        lambda: make_pipeline(StandardScaler(with_std=False), LogisticRegression(max_iter=5000)),
        lambda: make_pipeline(StandardScaler(), StandardScaler(), LogisticRegression()),
    ],
    ids=["bare", "scaled", "scaled-no-mean", "centred-only", "two-scalers"],
)
def test_linear_models_take_the_fast_path(make, classes: int) -> None:
    x, y = data(classes)
    model = make().fit(x, y)
    fast = fast_predict_proba(model)
    assert fast is not None
    fresh, _ = data(classes, n=50, seed=1)
    for rows in (fresh, fresh[:1]):
        np.testing.assert_allclose(fast(rows), model.predict_proba(rows), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "model",
    [
        RandomForestClassifier(n_estimators=5, random_state=0),
        make_pipeline(MinMaxScaler(), LogisticRegression()),
    ],
    ids=["forest", "other-scaler"],
)
def test_other_estimators_go_through_sklearn(model) -> None:
    x, y = data(3)
    model.fit(x, y)
    assert fast_predict_proba(model) is None
    np.testing.assert_array_equal(predict_proba_function(model)(x[:7]), model.predict_proba(x[:7]))


def test_a_fast_path_that_disagrees_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = data(3)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    # A subclass may compute predict_proba its own way: only the exact class is folded.
    model.steps[-1][1].__class__ = type("Tempered", (LogisticRegression,), {})
    assert fast_predict_proba(model) is None
    model.steps[-1][1].__class__ = LogisticRegression
    original = model.predict_proba
    monkeypatch.setattr(model, "predict_proba", lambda rows: original(rows) ** 1.01)
    assert fast_predict_proba(model) is None


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("classes", [2, 3, 4])
def test_small_linear_models_have_a_pure_python_row_path(classes: int) -> None:
    x, y = data(classes)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y)
    row = row_predict_proba(model)
    assert row is not None
    fresh, _ = data(classes, n=50, seed=1)
    for features, expected in zip(fresh.tolist(), model.predict_proba(fresh), strict=True):
        got = row(features)
        assert isinstance(got, list) and all(type(v) is float for v in got)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_row_path_only_for_small_linear_models() -> None:
    x, y = data(3)
    assert row_predict_proba(RandomForestClassifier(n_estimators=3).fit(x, y)) is None
    wide = np.random.default_rng(0).normal(size=(200, 300))
    big = LogisticRegression(max_iter=50).fit(wide, y[:200])
    assert big.coef_.size > ROW_PATH_MAX_WEIGHTS
    assert row_predict_proba(big) is None


def test_binary_row_path_says_nothing_on_overflow() -> None:
    x, y = data(2)
    model = LogisticRegression(max_iter=2000).fit(x, y)
    row = row_predict_proba(model)
    assert row is not None
    assert row([1e308] * 5) is None or all(np.isfinite(row([1e308] * 5)))
