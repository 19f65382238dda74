"""Pipeline cost: generation, cleaning, features, backtest and training, 1x and 10x rows.

    .venv/bin/python bench/bench_pipeline.py [--repeat N]

Builds two synthetic leagues in a temporary directory: the default 2003-2024 league
(about 8,800 rows, the real file's size) and one ten times longer (2003-2234, about
89,000 rows). Each stage runs N times on both, side by side in one process, so
the 10x/1x ratio compares like with like even on a busy machine (the two alternate within
each repeat; the best time of N counts). Linear cost shows as a time ratio close to the
row ratio (per-row ratio close to 1). "train command" is all of
`python -m ml train` but the interpreter start. Also times the football adapter on a
10,000-fixture batch, the path the API's batch endpoint takes.

Prints a Markdown table.
"""

import argparse
import contextlib
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.adapters.football import FootballAdapter
from ml.data import clean, read_raw
from ml.evaluate import backtest, default_test_from, make_model
from ml.features import FEATURE_NAMES, build_features
from ml.generate import write_league
from ml.team_state import team_state
from ml.train import fit_rows, train

LEAGUES = {"1x": (2003, 2024), "10x": (2003, 2234)}


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    """One timed call: (seconds, result)."""
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def quiet(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Run without the pipeline's stderr notes (the generated file's vencedor quirk)."""

    def run() -> Any:
        with contextlib.redirect_stderr(io.StringIO()):
            return fn()

    return run


def _fit(ctx: dict[str, Any]) -> Any:
    rows = fit_rows(ctx["matches"])
    x = ctx["features"].loc[rows, list(FEATURE_NAMES)].to_numpy()
    return make_model().fit(x, ctx["matches"].loc[rows, "outcome"].to_numpy())


def _train(ctx: dict[str, Any]) -> Any:
    """All of `train`: read, features, backtest and gate, fit, write the bundle."""
    out = Path(tempfile.mkdtemp(dir=ctx["path"].parent))  # a fresh parent per run
    return train(ctx["path"], out).bundle_dir


# Stage name, the context key its result goes to, and the stage itself.
STAGES: list[tuple[str, str, Callable[[dict[str, Any]], Any]]] = [
    ("generate", "rows", lambda c: write_league(c["path"], *c["seasons"], seed=0)),
    ("read + clean", "matches", lambda c: quiet(lambda: clean(read_raw(c["path"])))()),
    ("features", "features", lambda c: build_features(c["matches"])),
    ("backtest", "backtest",
     lambda c: backtest(c["matches"], default_test_from(c["matches"]), c["features"])),
    ("final fit", "model", _fit),
    ("team state", "state", lambda c: team_state(c["matches"])),
    ("train command", "bundle", lambda c: quiet(lambda: _train(c))()),
]  # fmt: skip


def run_stages(tmp: Path, repeat: int) -> dict[str, dict[str, Any]]:
    """Every stage on both leagues, alternating 1x and 10x within each repeat so both see
    the same machine load; keeps the best (minimum) time of the repeats."""
    ctx = {
        name: {"path": tmp / f"{name}.csv", "seasons": seasons, "times": {}}
        for name, seasons in LEAGUES.items()
    }
    for stage, key, fn in STAGES:
        for _ in range(repeat):
            for league in ctx.values():
                seconds, league[key] = timed(fn, league)
                best = league["times"].get(stage, float("inf"))
                league["times"][stage] = min(best, seconds)
    return ctx


def bench_batch(state: Any, model: Any, repeat: int) -> tuple[float, float]:
    """Features and probabilities for 10,000 fixtures between the last season's clubs."""
    adapter = FootballAdapter(state)
    teams = np.array(state.current_teams, dtype=object)
    rng = np.random.default_rng(0)
    home = rng.integers(0, len(teams), 10_000)
    away = (home + rng.integers(1, len(teams), 10_000)) % len(teams)
    columns = {"home_team": teams[home].tolist(), "away_team": teams[away].tolist()}
    features_s = min(timed(lambda: adapter.transform(columns))[0] for _ in range(repeat))
    proba_s = min(
        timed(lambda: model.predict_proba(adapter.transform(columns)))[0] for _ in range(repeat)
    )
    x = adapter.transform(columns)
    assert x.shape == (10_000, len(FEATURE_NAMES))
    return features_s, proba_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per stage (best of)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = run_stages(Path(tmp), args.repeat)
    small, big = ctx["1x"], ctx["10x"]
    row_ratio = big["rows"] / small["rows"]
    print(f"rows: 1x {small['rows']:,}, 10x {big['rows']:,} (ratio {row_ratio:.2f})\n")
    print("| stage | 1x s | 10x s | time ratio | per-row ratio |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for stage, _, _ in STAGES:
        t1, t10 = small["times"][stage], big["times"][stage]
        print(f"| {stage} | {t1:.3f} | {t10:.3f} | {t10 / t1:.1f} | {t10 / t1 / row_ratio:.2f} |")
    features_s, proba_s = bench_batch(small["state"], small["model"], max(args.repeat, 5))
    print(
        f"\n10,000-fixture batch (1x model): features {features_s * 1000:.1f} ms,"
        f" features + predict_proba {proba_s * 1000:.1f} ms"
    )
    print(f"\n(pandas {pd.__version__}, numpy {np.__version__}, best of {args.repeat})")


if __name__ == "__main__":
    main()
