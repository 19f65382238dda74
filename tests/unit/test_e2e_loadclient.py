"""The release tests' load client (tests/e2e/loadclient.py) against a local server: the load
lasts the window it was asked for, to the end of its last slot."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.e2e.loadclient import LoadClient, Request


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("stopped_early", [True, False])
def test_the_load_lasts_its_whole_window(base_url: str, stopped_early: bool) -> None:
    # A slow rate makes the last slot's interval (0.25 s) easy to see: stopping right after
    # the last request would report 0.75 s for a 1 s window.
    seconds = 1.0
    load = LoadClient(
        base_url,
        4,
        [Request("GET", "/")],
        max_seconds=10.0 if stopped_early else seconds,
        min_seconds=seconds if stopped_early else 0.0,
    )
    load.start()
    if stopped_early:
        load.stop()  # as a release that ends before min_seconds
    report = load.join()  # without stop(): the window's end or the request count ends it
    assert report.planned == 4
    assert len(report.sent) == 4
    assert report.failures == []
    assert seconds <= report.duration < seconds + 0.5, report.summary()
