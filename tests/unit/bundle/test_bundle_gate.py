import math
from typing import Any

import numpy as np
import pytest
from bundle_helpers import make_data
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from ml.bundle import DEFAULT_MIN_GAIN, QualityGateError, check_quality_gate


def _backtest(model: Any) -> dict[str, dict[str, float]]:
    """Metrics as `train` writes them: model and base rate log loss on held-out rows."""
    x, y = make_data(n=600, seed=3)
    fit_x, fit_y, test_x, test_y = x[:400], y[:400], x[400:], y[400:]
    model.fit(fit_x, fit_y)
    classes = np.unique(fit_y)
    base = np.tile([np.mean(fit_y == c) for c in classes], (len(test_y), 1))
    return {
        "model": {"log_loss": log_loss(test_y, model.predict_proba(test_x), labels=classes)},
        "base_rate": {"log_loss": log_loss(test_y, base, labels=classes)},
    }


def test_the_gate_refuses_a_useless_model() -> None:
    # A prior-only classifier IS the base rate: zero gain.
    metrics = _backtest(DummyClassifier(strategy="prior"))
    assert math.isclose(metrics["model"]["log_loss"], metrics["base_rate"]["log_loss"])
    with pytest.raises(QualityGateError, match="is not better than the base rate's"):
        check_quality_gate(metrics)


def test_the_gate_passes_a_model_that_learned_something() -> None:
    metrics = _backtest(LogisticRegression(max_iter=500))
    gain = check_quality_gate(metrics)
    assert gain is not None and gain > DEFAULT_MIN_GAIN
    assert gain == pytest.approx(metrics["base_rate"]["log_loss"] - metrics["model"]["log_loss"])


def _metrics(model: float, base: float) -> dict[str, dict[str, float]]:
    return {"model": {"log_loss": model}, "base_rate": {"log_loss": base}}


def test_the_margin_is_configurable() -> None:
    assert check_quality_gate(_metrics(0.98, 1.0), min_gain=0.01) == pytest.approx(0.02)
    with pytest.raises(QualityGateError, match=r"by 0\.05 \(gain \+0\.0200\)"):
        check_quality_gate(_metrics(0.98, 1.0), min_gain=0.05)


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        (_metrics(1.1, 1.0), "not better"),
        (_metrics(float("nan"), 1.0), "not better"),
        ({"model": {}}, "lack model.log_loss"),
        (None, "no backtest metrics .* --allow-unevaluated"),
    ],
)
def test_the_gate_refuses(metrics: dict | None, message: str) -> None:
    with pytest.raises(QualityGateError, match=message):
        check_quality_gate(metrics)


def test_unevaluated_bundles_pass_only_when_allowed() -> None:
    assert check_quality_gate(None, allow_unevaluated=True) is None
