"""Model API benchmark: wrk on loopback against real gunicorn, each figure beside its ceiling.

Run `make bench-api` (needs the model `make serve` trains; ~5 minutes, bounded: every
wrk run lasts --duration seconds). Method and results: docs/benchmarks.md, "Model API".

1. single predictions: max requests/s at 32 connections, the app vs a bare FastAPI
   endpoint returning a constant (bench/ceiling_app.py), same gunicorn config and workers;
   then the same with SO_REUSEPORT. The same row through the Open Inference Protocol
   (POST /v2/models/NAME/infer) runs on the same server right after the native one.
   How wrk's connections spread over the workers is recorded from `ss` mid-run.
2. latency: p99 at a paced rate of half the ceiling's maximum, app vs ceiling; at half
   the bare callable's maximum, each model vs the bare callable (issue 21's target); and,
   the issue's fallback where a model cannot hold that rate, each model at 80% of its own
   maximum vs the bare callable restarted at that same rate. bench/wrk_post.lua sends a
   paced run's requests on a clock; the run records the rate it asked for beside the one
   it achieved.
3. batches: rows/s for 10,000-row requests through the server vs the same work
   in-process on the same body, and the in-process split between the steps.

1 and 2 (and the vector model's) run in --rounds interleaved rounds (default 3), each
figure the median round's; --before DIR serves another checkout's app in each round too.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.predict import Predictor
from app.schema import compile_schema
from app.v2_codec import Codec
from app.v2_metadata import row_tensors
from bench.bench_api_report import median_run, report
from bench.bench_api_runner import REPO, Server, pss_mib, timed, wrk
from ml.bundle import load_bundle

MODEL = REPO / ".cache" / "serve" / "models" / "current"
BENCH_DIR = REPO / ".cache" / "bench"
OUT = BENCH_DIR / "bench_api.json"


def vector_model() -> Path:
    """A 4-feature LogisticRegression packaged with `ml package`: the serving path with a
    model that costs next to nothing, to separate the service from the feature code."""
    import joblib
    from sklearn.linear_model import LogisticRegression

    from ml.package import package_estimator

    current = BENCH_DIR / "vector-models" / "current"
    if not current.exists():
        rng = np.random.default_rng(0)
        x = rng.normal(size=(500, 4))
        y = np.select([x[:, 0] > 0.4, x[:, 0] < -0.4], ["home_win", "away_win"], "draw")
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        joblib.dump(LogisticRegression().fit(x, y), BENCH_DIR / "vector.joblib")
        (BENCH_DIR / "vector-schema.json").write_text(
            json.dumps({"kind": "vector", "name": "features", "length": 4})
        )
        bundle = package_estimator(
            BENCH_DIR / "vector.joblib",
            BENCH_DIR / "vector-schema.json",
            current.parent / "releases",
        )
        current.symlink_to(Path("releases") / bundle.name)
    return current


def batch_body(card: dict, rows: int, seed: int = 0) -> bytes:
    schema = card["input_schema"]
    rng = np.random.default_rng(seed)
    if schema["kind"] == "vector":
        data = rng.normal(size=(rows, schema["length"])).round(6).tolist()
        return json.dumps({"instances": [{schema["name"]: r} for r in data]}).encode()
    teams = schema["fields"][0]["enum"]
    home = rng.integers(0, len(teams), rows)
    away = (home + rng.integers(1, len(teams), rows)) % len(teams)
    instances = [
        {"home_team": teams[h], "away_team": teams[a]} for h, a in zip(home, away, strict=True)
    ]
    return json.dumps({"instances": instances}).encode()


def v2_single(card: dict, instance: dict, out: Path) -> tuple[Path, str]:
    """The V2 infer body of one native instance, and the model's infer path."""
    codec = Codec(compile_schema(card["input_schema"]), card["classes"], card["name"], "-")
    out.write_bytes(json.dumps({"inputs": row_tensors(codec, instance)}).encode())
    return out, f"/v2/models/{card['name']}/infer"


def in_process(body: bytes, seconds: float, model_dir: Path = MODEL) -> dict[str, float]:
    model = load_bundle(model_dir)
    predictor = Predictor(model, compile_schema(model.input_schema), batch_limit=10_000)
    instances, loc = predictor.parse(body)
    columns = predictor.validate(instances, loc)
    matrix = model.adapter.transform(columns)
    proba = predictor.predict(columns)
    winners = proba.argmax(axis=1)
    return {
        "total": timed(lambda: predictor.run(body), seconds),
        "parse": timed(lambda: predictor.parse(body), seconds / 4),
        "validate": timed(lambda: predictor.validate(instances, loc), seconds / 4),
        "features": timed(lambda: model.adapter.transform(columns), seconds / 4),
        "predict_proba": timed(lambda: model.estimator.predict_proba(matrix), seconds / 4),
        "predict_served": timed(lambda: model.predict_matrix(matrix), seconds / 4),
        "serialize": timed(lambda: predictor.encode(proba, winners), seconds / 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds of the single-prediction runs"
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="another checkout (a git worktree of the base commit) served beside this one"
        " in every round, as app-before and vector-before",
    )
    args = parser.parse_args()
    if not MODEL.exists():
        raise SystemExit(f"no model at {MODEL}: run `make serve-model` first")
    card = load_bundle(MODEL).card
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    single = work / "single.json"
    example = {f["name"]: f["enum"][i] for i, f in enumerate(card["input_schema"]["fields"])}
    single.write_text(json.dumps(example))
    batch = work / "batch.json"
    batch.write_bytes(batch_body(card, 10_000))
    d, w = args.duration, args.workers
    results: dict[str, Any] = {"workers": w, "duration_s": d, "model": card["version"]}
    rounds: list[dict[str, Any]] = []
    into = results  # where run() writes: the current round's dict, then results

    def run(
        name: str,
        app: str | None,
        workers: int,
        reuse: bool,
        *jobs: tuple,
        model: Path = MODEL,
        plain: bool = False,
        checkout: Path = REPO,
        read_pss: bool = True,
    ) -> None:
        estimator = BENCH_DIR / "vector.joblib" if plain else None
        server = Server(app, workers, reuse, work / f"{name}.log", model, estimator, checkout)
        try:
            for key, body, conns, threads, paced_at, *path in jobs:
                rate = paced_at() if callable(paced_at) else paced_at  # req/s; 0: unpaced
                into[f"{name}/{key}"] = r = wrk(body, conns, d, threads, rate, *path)
                asked = f" (of {r['requested_rps']:.0f})" if "requested_rps" in r else ""
                print(f"{name}/{key}: {r['rps']:.0f}{asked} req/s, p99 {r['p99_us'] / 1000:.2f} ms,"
                      f" errors {r['socket_errors']}+{r['non2xx']}, spread {r['spread']},"
                      f" load {os.getloadavg()[0]:.1f}", file=sys.stderr)  # fmt: skip
            if read_pss:  # after load, at peak
                into[f"{name}/pss_mib"] = pss_mib(server.proc.pid)
        finally:
            server.stop()

    ceiling = "bench.ceiling_app:create_app()"

    # Paced runs' rates, read when the run starts, from this round's max runs.
    def pace() -> float:  # half the FastAPI ceiling's maximum
        return into["ceiling/max"]["rps"] / 2

    def pace_bare() -> float:  # half the bare ASGI callable's maximum (issue 21's p99 target)
        return into["bare/max"]["rps"] / 2

    def pace_own80(name: str) -> Callable[[], float]:
        """80% of that server's own maximum: issue 21's fallback rate, for when palpite
        cannot hold half the bare maximum."""
        return lambda: 0.8 * into[f"{name}/max"]["rps"]

    v2_body, v2_path = v2_single(card, example, work / "v2-single.json")
    vector = vector_model()
    vcard = load_bundle(vector).card
    vsingle = work / "vector-single.json"
    vrow = {"features": [0.5, -1.0, 2.0, 0.1]}
    vsingle.write_text(json.dumps(vrow))
    vbatch = work / "vector-batch.json"
    vbatch.write_bytes(batch_body(vcard, 10_000))
    v2_vbody, v2_vpath = v2_single(vcard, vrow, work / "v2-vector-single.json")
    app_jobs = [
        ("max", single, 32, 2, 0),
        ("v2-max", v2_body, 32, 2, 0, v2_path),
        ("paced", single, 32, 2, pace),
        ("paced-bare", single, 32, 2, pace_bare),
        ("paced-own80", single, 32, 2, pace_own80("app")),
    ]
    vjobs = [
        ("max", vsingle, 32, 2, 0),
        ("v2-max", v2_vbody, 32, 2, 0, v2_vpath),
        ("paced", vsingle, 32, 2, pace),
        ("paced-bare", vsingle, 32, 2, pace_bare),
        ("paced-own80", vsingle, 32, 2, pace_own80("vector")),
    ]
    for n in range(args.rounds):
        into = {"load_at_start": os.getloadavg()[0], "time": time.strftime("%H:%M:%S")}
        rounds.append(into)
        print(f"round {n + 1}, load {into['load_at_start']:.1f}", file=sys.stderr)
        last = n == args.rounds - 1  # the batch runs once, in the last round (PSS after it)
        run("ceiling", ceiling, w, False, ("max", single, 32, 2, 0), ("paced", single, 32, 2, pace))
        # No framework at all: read the body, send start and body (bench/bare_asgi_app.py).
        bare_jobs = (("max", single, 32, 2, 0), ("paced", single, 32, 2, pace_bare))
        run("bare", "bench.bare_asgi_app:app", w, False, *bare_jobs)
        app_batch = [("batch", batch, 2 * w, 2, 0)] if last else []
        vector_batch = [("batch", vbatch, 2 * w, 2, 0)] if last else []
        servers: list[tuple[str, list[tuple], dict[str, Any]]] = [
            ("app", [*app_jobs, *app_batch], {}),
            ("vector", [*vjobs, *vector_batch], {"model": vector}),
        ]
        if args.before:  # the same rows through the other checkout's app
            before = args.before.resolve()
            servers += [
                ("app-before", app_jobs[:2], {"checkout": before}),
                ("vector-before", vjobs[:2], {"model": vector, "checkout": before}),
            ]
        for name, jobs, kwargs in servers[:: 1 if n % 2 == 0 else -1]:  # who goes first
            run(name, None, w, False, *jobs, **kwargs)
        # The bare callable again, at each model's own-80% rate (known only now), with the
        # same body; its PSS stays the one read after its max run.
        bare_own80 = (
            ("paced-app80", single, 32, 2, pace_own80("app")),
            ("paced-vector80", vsingle, 32, 2, pace_own80("vector")),
        )
        run("bare", "bench.bare_asgi_app:app", w, False, *bare_own80, read_pss=False)
    into = results
    results["rounds"] = rounds
    for key in rounds[0]:
        if isinstance(rounds[0][key], dict) and "rps" in rounds[0][key]:
            results[key] = median_run(key, [r[key] for r in rounds])
    for key in rounds[-1]:  # the batch runs and the PSS after them: the last round's
        results.setdefault(key, rounds[-1][key])
    run("vector-1worker", None, 1, False, ("batch", vbatch, 2, 1, 0), model=vector)
    # The memory yardstick: the same estimator in a minimal FastAPI app, plain gunicorn.
    run("minimal", "bench.minimal_app:app", w, False, ("max", vsingle, 32, 2, 0), plain=True)
    run("app-reuseport", None, w, True, ("max", single, 32, 2, 0))
    run("ceiling-reuseport", ceiling, w, True, ("max", single, 32, 2, 0))
    run("app-1worker", None, 1, False, ("batch", batch, 2, 1, 0))
    results["in_process_s"] = in_process(batch.read_bytes(), seconds=5)
    results["vector_in_process_s"] = in_process(vbatch.read_bytes(), seconds=3, model_dir=vector)
    results["half_ceiling_rps"] = results["ceiling/max"]["rps"] / 2
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    report(results)


if __name__ == "__main__":
    main()
