"""An unexpected error's 500 closes its connection and says so.

Starlette re-raises after the app's 500 handler and uvicorn then closes the connection.
Without `Connection: close` in that answer, a proxy keeping upstream connections alive
puts the connection back in its pool and sends another client's request down it; nginx
answers that request with a 502 (a POST is not retried). Seen as 502s beside a model
failing on one input (docs/benchmarks.md, session 7)."""

import http.client
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from app.main import create_app
from app.predict import Prediction, Predictor
from app.settings import Settings
from tests.local_server import serve_in_thread


def _failing(real: Callable[[Predictor, bytes], Prediction]) -> Callable[..., Prediction]:
    """Predictor.run (what every POST /predict goes through) failing like a model raising
    on one input."""

    def run(self: Predictor, body: bytes) -> Prediction:
        if b"boom" in body:
            raise RuntimeError("the estimator raised on this input")
        return real(self, body)

    return run


@pytest.fixture
def server(vector_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setattr(Predictor, "run", _failing(Predictor.run))
    service = create_app(Settings(model_dir=vector_bundle))
    with serve_in_thread(service, http="httptools", log_level="critical") as port:
        yield port


def _post(conn: http.client.HTTPConnection, body: bytes) -> http.client.HTTPResponse:
    conn.request("POST", "/predict", body, {"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response


def test_the_500_of_an_unexpected_error_says_the_connection_closes(server: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    good = b'{"features": [0.1, 0.2, 0.3, 0.4]}'
    assert _post(conn, good).status == 200
    assert _post(conn, good).getheader("connection") != "close"  # kept alive so far

    failed = _post(conn, b'{"features": [0.1, 0.2, 0.3, 0.4], "boom": 1}')
    assert failed.status == 500
    assert failed.getheader("connection") == "close", failed.getheaders()
    assert failed.getheader("content-type") == "application/json"
    conn.close()

    # The server goes on answering on new connections.
    again = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    assert _post(again, good).status == 200
    again.close()


def test_the_500_body_is_the_error_shape_and_says_nothing_of_the_cause(server: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    conn.request("POST", "/predict", b'{"boom": 1}', {"content-type": "application/json"})
    response = conn.getresponse()
    assert orjson.loads(response.read()) == {
        "error": "internal_error",
        "message": "internal error, logged on the server",
    }
    conn.close()
