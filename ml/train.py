"""`train`: results to a gated model bundle.

The backtest runs first and gates: a model that does not beat the base-rate baseline's
log loss by `min_gain` stops here, before anything is written. Then the model is fitted
on every match after the warm-up season and written as a bundle with the team-state
snapshot its football adapter serves from.
"""

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.adapters.football import STATE_FILE, input_schema, state_file_bytes
from ml.bundle import DEFAULT_MIN_GAIN, check_quality_gate, write_bundle
from ml.data import CLASS_LABELS, CLASSES, load_matches
from ml.evaluate import WARMUP_SEASONS, backtest, default_test_from, make_model
from ml.features import FEATURE_CODE_VERSION, FEATURE_NAMES, build_features
from ml.fileio import sha256_file
from ml.progress import info, step
from ml.team_state import team_state

DEFAULT_NAME = "brasileirao-outcome"
DEFAULT_OUT = Path("artifacts/bundles")


@dataclass(frozen=True)
class Trained:
    bundle_dir: Path
    metrics: dict[str, Any]
    gain: float  # base-rate log loss minus the model's, in the backtest


def fit_rows(matches: pd.DataFrame) -> np.ndarray:
    """Every match after the warm-up season(s), whose ratings all start level."""
    warmup = sorted(matches["season"].unique())[:WARMUP_SEASONS]
    return ~matches["season"].isin(warmup).to_numpy()


def train(
    data: Path,
    out_dir: Path = DEFAULT_OUT,
    test_from: dt.date | None = None,
    min_gain: float = DEFAULT_MIN_GAIN,
    name: str = DEFAULT_NAME,
) -> Trained:
    with step(f"reading {data}"):
        matches = load_matches(data)
    with step(f"features for {len(matches)} matches"):
        features = build_features(matches)
    cutoff = test_from or default_test_from(matches)
    with step(f"backtest from {cutoff}"):
        result = backtest(matches, cutoff, features)
    metrics: dict[str, Any] = {"test_from": cutoff.isoformat(), **result.metrics}
    for forecaster in ("model", "base_rate", "rating_only"):
        m = metrics[forecaster]
        info(f"  {forecaster:<12} log loss {m['log_loss']:.4f}  RPS {m['rps']:.4f}")
    gain = check_quality_gate(metrics, min_gain)
    assert gain is not None
    info(f"quality gate passed: log loss {gain:.4f} below the base rate (needs > {min_gain:g})")

    rows = fit_rows(matches)
    with step(f"fitting on {int(rows.sum())} matches"):
        model = make_model().fit(
            features.loc[rows, list(FEATURE_NAMES)].to_numpy(),
            matches.loc[rows, "outcome"].to_numpy(),
        )
    state = team_state(matches)
    card_fields = {
        "name": name,
        "adapter": {"kind": "football", "feature_code_version": FEATURE_CODE_VERSION},
        "input_schema": input_schema(state),
        "feature_names": list(FEATURE_NAMES),
        "classes": list(CLASSES),
        "class_labels": dict(CLASS_LABELS),
        "training_data": {
            "sha256": sha256_file(data),
            "rows": len(matches),
            "date_from": f"{matches['date'].min():%Y-%m-%d}",
            "date_to": f"{matches['date'].max():%Y-%m-%d}",
            "fit_rows": int(rows.sum()),
        },
        "metrics": metrics,
        "extra": {},
    }
    with step("writing the bundle"):
        bundle_dir = write_bundle(
            out_dir, model, card_fields, {STATE_FILE: state_file_bytes(state)}
        )
    return Trained(bundle_dir, metrics, gain)
