"""The quality gate: a model must beat the base-rate baseline to be published or trained."""

from collections.abc import Mapping
from typing import Any

from ml.errors import PalpiteError

# Log-loss units (nats) by which the model must beat the base-rate baseline.
DEFAULT_MIN_GAIN = 0.005


class QualityGateError(PalpiteError):
    """A model that does not beat the base-rate baseline by the required margin."""


def check_quality_gate(
    metrics: Mapping[str, Any] | None,
    min_gain: float = DEFAULT_MIN_GAIN,
    *,
    allow_unevaluated: bool = False,
) -> float | None:
    """Refuse a model whose log loss does not beat the base rate's by `min_gain`.

    Returns the gain (base-rate log loss minus model log loss), or None for an
    unevaluated bundle let through by `allow_unevaluated`.
    """
    if metrics is None:
        if allow_unevaluated:
            return None
        raise QualityGateError(
            "quality gate: the bundle has no backtest metrics (made by `package`?);"
            " pass --allow-unevaluated to publish it anyway"
        )
    try:
        model = float(metrics["model"]["log_loss"])
        base = float(metrics["base_rate"]["log_loss"])
    except (KeyError, TypeError, ValueError):
        raise QualityGateError(
            "quality gate: metrics lack model.log_loss or base_rate.log_loss"
        ) from None
    gain = base - model
    if not gain > min_gain:  # also refuses NaN
        raise QualityGateError(
            f"quality gate: model log loss {model:.4f} is not better than the base rate's"
            f" {base:.4f} by {min_gain:g} (gain {gain:+.4f})"
        )
    return gain
