"""Per-request cost of the app without a server: µs per single prediction through the
whole ASGI app (`await app(scope, receive, send)` in a loop), native /predict and the Open
Inference Protocol's /v2 infer, beside the ceiling app and `Predictor.run` alone. Quick
to run (~15 s), for working on the request path; the figures that count are
bench_api.py's, through gunicorn.

    .venv/bin/python bench/bench_asgi.py [MODEL_DIR]   # default: make serve's model
"""

import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="bench-asgi-"))

from app.main import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.v2_codec import Codec  # noqa: E402
from app.v2_metadata import single_row_request  # noqa: E402
from bench.ceiling_app import create_app as create_ceiling  # noqa: E402

MODEL = REPO / ".cache" / "serve" / "models" / "current"
REQUESTS = 20_000


def per_request_us(app: Any, body: bytes, path: str = "/predict") -> tuple[float, int]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    }  # fmt: skip
    statuses: list[int] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def loop() -> float:
        for _ in range(500):  # warm-up
            await app(dict(scope), receive, send)
        start = time.perf_counter()
        for _ in range(REQUESTS):
            await app(dict(scope), receive, send)
        return (time.perf_counter() - start) / REQUESTS * 1e6

    return asyncio.run(loop()), statuses[-1]


def v2_codec(app: Any) -> Codec:
    ctx = app.state.ctx
    return Codec(ctx.predictor.schema, ctx.predictor.classes, ctx.model.card["name"], "-")


def main() -> None:
    model = Path(sys.argv[1]) if len(sys.argv) > 1 else MODEL
    # As in a gunicorn worker (gunicorn.conf.py post_fork): the access line is written,
    # to a handler that drops it, and logging skips what no format shows.
    access = logging.getLogger("palpite.access")
    access.handlers, access.propagate = [logging.NullHandler()], False
    access.setLevel(logging.INFO)
    logging.logThreads = logging.logMultiprocessing = logging.logAsyncioTasks = False
    logging._srcfile = None  # type: ignore[attr-defined]

    app = create_app(Settings(model_dir=model))
    predictor = app.state.ctx.predictor
    if predictor is None:
        sys.exit(f"no model at {model}: run `make serve-model` first")
    body = orjson.dumps(predictor.schema.example)  # one instance, valid for the model
    protocol = app.state.ctx.model.card["name"]
    v2_path = f"/v2/models/{protocol}/infer"
    v2_body = orjson.dumps(single_row_request(v2_codec(app)))
    for _ in range(3):
        app_us, status = per_request_us(app, body)
        v2_us, v2_status = per_request_us(app, v2_body, v2_path)
        ceiling_us, _ = per_request_us(create_ceiling(), body)
        start = time.perf_counter()
        for _ in range(REQUESTS):
            predictor.run(body)
        run_us = (time.perf_counter() - start) / REQUESTS * 1e6
        print(
            f"app {app_us:6.1f} µs (status {status})   v2 {v2_us:6.1f} µs (status {v2_status})"
            f"   ceiling {ceiling_us:6.1f} µs   Predictor.run {run_us:6.1f} µs"
        )


if __name__ == "__main__":
    main()
