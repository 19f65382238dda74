"""Where the microseconds of one single prediction go, step by step, in process.

Each step runs on its own in a loop (the best of several rounds, so other work on the
machine inflates the figures less), for the football model and the packaged vector
model. The server's own share (uvicorn's protocol, the event loop, the kernel) is not
here: bench_api.py's bare ASGI ceiling measures it.

    .venv/bin/python bench/bench_breakdown.py [--profile]   # after make bench-api once

`--profile` also prints cProfile's top functions for the whole ASGI app.
"""

import asyncio
import cProfile
import logging
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="bench-breakdown-"))

from app.main import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench.bench_asgi import per_request_us  # noqa: E402

MODELS = {
    "football": REPO / ".cache" / "serve" / "models" / "current",
    "vector": REPO / ".cache" / "bench" / "vector-models" / "current",
}
ROUNDS, CALLS = 5, 20_000


def best_us(fn: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(CALLS):
            fn()
        best = min(best, time.perf_counter() - start)
    return best / CALLS * 1e6


def access_log_to_file() -> Path:
    """As in a gunicorn worker: the access log's handler writes each line to a file."""
    path = Path(tempfile.mkdtemp(prefix="bench-breakdown-log-")) / "access.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("palpite.access")
    access.handlers, access.propagate = [handler], False
    access.setLevel(logging.INFO)
    logging.logThreads = logging.logMultiprocessing = logging.logAsyncioTasks = False
    logging._srcfile = None  # type: ignore[attr-defined]
    return path


def breakdown(model_dir: Path, body: bytes) -> dict[str, float]:
    app = create_app(Settings(model_dir=model_dir))
    ctx = app.state.ctx
    predictor, model, metrics = ctx.predictor, ctx.model.model, ctx.metrics
    instances, loc = predictor.parse(body)
    columns = predictor.validate(instances, loc)
    matrix = model.adapter.transform(columns)
    scores = predictor.score(instances, loc)
    book = app.fast_lane.book  # what ServiceMiddleware and the fast lane record with
    scope = {
        "route": SimpleNamespace(path="/predict"),
        "method": "POST",
        "path": "/predict",
        "client": ("127.0.0.1", 1),
    }
    steps = {
        "parse (orjson + shape)": lambda: predictor.parse(body),
        "validate": lambda: predictor.validate(instances, loc),
        "features (adapter)": lambda: model.adapter.transform(columns),
        "predict (served path)": lambda: model.predict_matrix(matrix),
        "score (validate+features+predict+count)": lambda: predictor.score(instances, loc),
        "encode": lambda: predictor.encode(scores.proba, scores.winners),
        "Predictor.run": lambda: predictor.run(body),
        "metrics: one request": lambda: metrics.record_request("/predict", "POST", 200, 1e-3),
        "access log + metrics (Bookkeeping.record)": lambda: book.record(
            scope, 200, 1e-3, b"0123456789abcdef0123456789abcdef", 100
        ),
    }
    out = {name: best_us(fn) for name, fn in steps.items()}
    out["whole ASGI app"] = min(per_request_us(app, body)[0] for _ in range(3))
    lane, app.fast_lane = app.fast_lane, None  # the same app through FastAPI's stack
    out["whole ASGI app, fast lane off"] = min(per_request_us(app, body)[0] for _ in range(3))
    app.fast_lane = lane
    return out


def main() -> None:
    access_log_to_file()
    bodies = {
        "football": orjson.dumps({"home_team": "Arsenal", "away_team": "Chelsea"}),
        "vector": orjson.dumps({"features": [0.5, -1.0, 2.0, 0.1]}),
    }
    results = {}
    for name, model_dir in MODELS.items():
        if not model_dir.exists():
            sys.exit(f"no model at {model_dir}: run make bench-api once first")
        if name == "football":  # a pairing the model knows
            example = create_app(Settings(model_dir=model_dir)).state.ctx.predictor
            bodies[name] = orjson.dumps(example.schema.example)
        results[name] = breakdown(model_dir, bodies[name])
    print(f"| step (µs per request, best of {ROUNDS}x{CALLS:,}) | football | vector |")
    print("| --- | ---: | ---: |")
    for step in results["football"]:
        print(f"| {step} | {results['football'][step]:.1f} | {results['vector'][step]:.1f} |")
    if "--profile" in sys.argv:
        app = create_app(Settings(model_dir=MODELS["football"]))
        profile = cProfile.Profile()
        profile.enable()
        asyncio.run(_noop())
        per_request_us(app, bodies["football"])
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)


async def _noop() -> None:
    return None


if __name__ == "__main__":
    main()
