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


def test_one_load_over_two_servers_is_told_apart_by_url(base_url: str) -> None:
    # The slowloris test's control: one client, each request to the attacked host followed
    # by one to the other, each host's latency read from its own samples.
    other = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        other_url = f"http://127.0.0.1:{other.server_address[1]}"
        urls = [base_url + "/a", other_url + "/b"]
        report = (
            LoadClient(base_url, 20, [Request("GET", url) for url in urls], max_seconds=0.5)
            .start()
            .join()
        )
    finally:
        other.shutdown()
        other.server_close()
    first, second = (report.only(url) for url in urls)
    assert [s.seq for s in first.sent] == [0, 2, 4, 6, 8]
    assert [s.seq for s in second.sent] == [1, 3, 5, 7, 9]
    assert first.failures == second.failures == []
    assert report.only(base_url + "/b").sent == []  # the other server's address, not its path
