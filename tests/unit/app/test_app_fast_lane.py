"""The fast lane (app/fast_lane.py) answers its requests exactly as the app's FastAPI
stack does: for each request in a table (good and bad, native and /v2), one app with the
lane and one with it off give the same status, headers (the request id's value aside,
unless the client sent one), body bytes, access line and metrics; and the lane really
is taken, past the stack, for the hot POSTs and for nothing else."""

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.predict import Prediction, Predictor
from app.settings import Settings

LIMIT = 1024  # the smallest body limit Settings allows
JSON = {"content-type": "application/json"}
VECTOR = b'{"features": [0.1, 0.2, 0.3, 0.4]}'
V2_VECTOR = b'{"inputs": [{"name": "features", "datatype": "FP64", "shape": [1, 4],'
V2_VECTOR += b' "data": [0.1, 0.2, 0.3, 0.4]}]}'


def chunks() -> Iterator[bytes]:
    """A body over the limit with no Content-Length: the limit applies while reading."""
    yield b'{"instances": ['
    for _ in range(60):
        yield b'{"features": [1.5, 2.5, 3.5, 4.5]},'
    yield b'{"features": [1, 2, 3, 4]}]}'


Case = tuple[str, str, Any, dict[str, str]]  # method, path, body (bytes or a factory), headers

VECTOR_CASES: dict[str, Case] = {
    "single": ("POST", "/predict", VECTOR, JSON),
    "batch": ("POST", "/predict", b'{"instances": [' + VECTOR + b"," + VECTOR + b"]}", JSON),
    "invalid value 422": ("POST", "/predict", b'{"features": [1, 2]}', JSON),
    "not a number 422": ("POST", "/predict", b'{"features": [1, 2, "x", 4]}', JSON),
    "extra field 422": ("POST", "/predict", b'{"instances": [], "x": 1}', JSON),
    "malformed JSON 400": ("POST", "/predict", b'{"features": [1, 2,', JSON),
    "NaN 400": ("POST", "/predict", b'{"features": [NaN, 2, 3, 4]}', JSON),
    "wrong content type 415": ("POST", "/predict", VECTOR, {"content-type": "text/plain"}),
    "no content type 415": ("POST", "/predict", VECTOR, {}),
    "declared over the limit 413": ("POST", "/predict", b"[" + b"1," * LIMIT + b"1]", JSON),
    "streamed over the limit 413": ("POST", "/predict", chunks, JSON),
    "client's request id": ("POST", "/predict", VECTOR, {**JSON, "x-request-id": "abc-123.x"}),
    "unsafe request id": ("POST", "/predict", VECTOR, {**JSON, "x-request-id": 'a b"c'}),
    "v2 single": ("POST", "/v2/models/clf/infer", V2_VECTOR, JSON),
    "v2 without content type": ("POST", "/v2/models/clf/infer", V2_VECTOR, {}),
    "v2 bad tensor 422": ("POST", "/v2/models/clf/infer", b'{"inputs": [{"name": "x"}]}', JSON),
    "v2 malformed 400": ("POST", "/v2/models/clf/infer", b'{"inputs": [', JSON),
    "v2 binary 415": (
        "POST",
        "/v2/models/clf/infer",
        V2_VECTOR,
        {**JSON, "inference-header-content-length": "10"},
    ),
    "v2 over the limit 413": ("POST", "/v2/models/clf/infer", b" " * (LIMIT + 1), JSON),
    "v2 unknown model 404 (not in the lane)": ("POST", "/v2/models/other/infer", V2_VECTOR, JSON),
    "GET /predict 405 (not in the lane)": ("GET", "/predict", None, {}),
    "GET /health/ready (not in the lane)": ("GET", "/health/ready", None, {}),
}


class AccessLines(logging.Handler):
    """The access lines, through logging (a handler the direct write does not take)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(record.getMessage()))


@pytest.fixture
def access() -> Iterator[AccessLines]:
    logger = logging.getLogger("palpite.access")
    saved = logger.handlers, logger.propagate, logger.level
    handler = AccessLines()
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    yield handler
    logger.handlers, logger.propagate = saved[:2]
    logger.setLevel(saved[2])


class CountingStack:
    """Stands in front of the app's FastAPI stack and counts the requests it gets."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


def clients(model_dir: Path) -> tuple[TestClient, TestClient, CountingStack]:
    """The same app twice: with the fast lane, and with it off (the FastAPI stack)."""
    fast = create_app(Settings(model_dir=model_dir, max_body_bytes=LIMIT))
    stack = fast.middleware_stack = CountingStack(fast.build_middleware_stack())
    slow = create_app(Settings(model_dir=model_dir, max_body_bytes=LIMIT))
    slow.fast_lane = None
    return TestClient(fast), TestClient(slow), stack


def send(client: TestClient, case: Case) -> Any:
    method, path, body, headers = case
    content = body() if callable(body) else body
    return client.request(method, path, content=content, headers=headers)


def metrics(client: TestClient) -> list[str]:
    """The counters and the latency histogram's counts (not its timings)."""
    text = client.app.state.ctx.metrics.render().decode()  # type: ignore[attr-defined]
    keep = ("palpite_http_requests_total", "palpite_predictions_total", "_count")
    return sorted(
        line
        for line in text.splitlines()
        if not line.startswith("#") and any(k in line.split("{")[0] for k in keep)
    )


def comparable(line: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in line.items() if k not in ("time", "request_id", "duration_ms")}


def assert_same(
    case: Case, fast: TestClient, slow: TestClient, access: AccessLines
) -> tuple[Any, Any]:
    access.lines.clear()
    a = send(fast, case)
    fast_lines = list(access.lines)
    access.lines.clear()
    b = send(slow, case)
    slow_lines = list(access.lines)
    assert (a.status_code, a.content) == (b.status_code, b.content)
    sent_id = case[3].get("x-request-id")
    for r, lines in ((a, fast_lines), (b, slow_lines)):
        rid = r.headers["x-request-id"]
        assert rid == sent_id if sent_id == "abc-123.x" else len(rid) == 32
        assert [line["request_id"] for line in lines] == [rid]  # one complete line each
    if sent_id != "abc-123.x":
        assert a.headers["x-request-id"] != b.headers["x-request-id"]
    assert [(k, v) for k, v in a.headers.items() if k != "x-request-id"] == [
        (k, v) for k, v in b.headers.items() if k != "x-request-id"
    ]
    assert list(a.headers.keys()) == list(b.headers.keys())  # the same order too
    assert [comparable(x) for x in fast_lines] == [comparable(x) for x in slow_lines]
    assert metrics(fast) == metrics(slow)
    return a, b


@pytest.mark.parametrize("name", list(VECTOR_CASES))
def test_the_lane_answers_as_the_stack(vector_bundle: Path, access: AccessLines, name: str) -> None:
    fast, slow, stack = clients(vector_bundle)
    case = VECTOR_CASES[name]
    a, _ = assert_same(case, fast, slow, access)
    in_lane = "not in the lane" not in name
    assert stack.calls == (0 if in_lane else 1)
    assert a.headers["x-model-version"]


def test_a_sequence_keeps_the_same_records(vector_bundle: Path, access: AccessLines) -> None:
    """Metrics add up the same over many requests of every kind, on one pair of apps."""
    fast, slow, _ = clients(vector_bundle)
    for case in [*VECTOR_CASES.values(), *VECTOR_CASES.values()]:
        assert_same(case, fast, slow, access)
    assert "palpite_predictions_total" in "".join(metrics(fast))


def test_record_and_table_answers_match(
    record_bundle: Path, pairs_bundle: Path, access: AccessLines
) -> None:
    """Named fields (the record schema) and a tabled model (every instance known, as
    the football model): good and bad, native and /v2, single and versioned."""
    for bundle in (record_bundle, pairs_bundle):
        fast, slow, stack = clients(bundle)
        ctx = fast.app.state.ctx  # type: ignore[attr-defined]
        example = ctx.predictor.schema.example
        name, version = ctx.model.card["name"], ctx.model.version
        tensors = [
            {"name": k, "datatype": "BYTES" if isinstance(v, str) else "FP64", "shape": [1],
             "data": [v]}
            for k, v in example.items()
        ]  # fmt: skip
        v2 = orjson.dumps({"inputs": tensors, "id": "r1"})
        bad = {**example, next(iter(example)): "Nowhere FC"}
        cases: list[Case] = [
            ("POST", "/predict", orjson.dumps(example), JSON),
            ("POST", "/predict", orjson.dumps({"instances": [example, example]}), JSON),
            ("POST", "/predict", orjson.dumps(bad), JSON),
            ("POST", "/predict", orjson.dumps({k: 1 for k in example}), JSON),
            ("POST", f"/v2/models/{name}/infer", v2, JSON),
            ("POST", f"/v2/models/{name}/versions/{version}/infer", v2, JSON),
            ("POST", f"/v2/models/{name}/infer", v2.replace(b"FP64", b"INT8"), JSON),
        ]
        for case in cases:
            assert_same(case, fast, slow, access)
        assert stack.calls == 0


def test_no_model_503_is_the_same(tmp_path: Path, access: AccessLines) -> None:
    fast, slow, stack = clients(tmp_path / "models" / "current")
    a, _ = assert_same(("POST", "/predict", VECTOR, JSON), fast, slow, access)
    assert a.status_code == 503 and stack.calls == 0
    assert "x-model-version" not in a.headers


def _failing(real: Callable[[Predictor, bytes], Prediction]) -> Callable[..., Prediction]:
    def run(self: Predictor, body: bytes) -> Prediction:
        if b"boom" in body:
            raise RuntimeError("the estimator raised on this input")
        return real(self, body)

    return run


def test_an_unexpected_error_is_the_same_500_log_and_records(
    vector_bundle: Path,
    access: AccessLines,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(Predictor, "run", _failing(Predictor.run))
    fast, slow, stack = clients(vector_bundle)
    boom = ("POST", "/predict", b'{"boom": 1}', JSON)
    results = []
    for client in (fast, slow):
        access.lines.clear()
        caplog.clear()
        # The error goes on up to the server (which closes the connection), as Starlette's.
        with pytest.raises(RuntimeError, match="the estimator raised"):
            send(client, boom)
        quiet = TestClient(client.app, raise_server_exceptions=False)
        r = send(quiet, boom)
        errors = [
            (rec.name, rec.getMessage(), rec.exc_info is not None)
            for rec in caplog.records
            if rec.levelno >= logging.ERROR
        ]
        results.append(
            (r.status_code, r.content, list(r.headers.items()), errors,
             [comparable(x) for x in access.lines], metrics(client))
        )  # fmt: skip
    assert results[0] == results[1]
    status, body, headers, errors, lines, _ = results[0]
    assert status == 500 and orjson.loads(body)["error"] == "internal_error"
    assert ("connection", "close") in headers
    assert errors == [("palpite.app", "unhandled error on POST /predict", True)] * 2
    assert [line["status"] for line in lines] == [500, 500]
    assert stack.calls == 0
