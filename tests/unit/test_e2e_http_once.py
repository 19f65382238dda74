"""The load client's one-request-per-connection HTTP client (tests/e2e/http_once.py): what it
sends, and that an answer cut short is an error, never a success."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.e2e.http_once import BadResponseError, encode, parse, request_once


def test_a_json_request_names_its_host_length_and_closes() -> None:
    host, port, https, request = encode("POST", "https://10.0.0.7/predict?x=1", {"a": 1})
    assert (host, port, https) == ("10.0.0.7", 443, True)
    head, _, body = request.partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b"POST /predict?x=1 HTTP/1.1",
        b"Host: 10.0.0.7",
        b"Connection: close",
        b"Content-Type: application/json",
        b"Content-Length: 8",
    ]
    assert json.loads(body) == {"a": 1}
    assert encode("GET", "http://10.0.0.7:8080")[1:3] == (8080, False)
    with pytest.raises(ValueError, match="not an http"):
        encode("GET", "/relative")


def test_a_whole_answer_gives_its_status_and_headers() -> None:
    answer = parse(
        b"HTTP/1.1 503 Service Unavailable\r\nX-Model-Version: v2\r\nContent-Length: 2\r\n\r\n{}"
    )
    assert answer.status == 503
    assert answer.headers["x-model-version"] == "v2"
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    assert parse(chunked).status == 200


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "no complete header"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10", "no complete header"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", "cut short"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n", "cut short"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n{}", "not a Content-Length"),
    ],
)
def test_an_answer_cut_short_or_not_http_is_an_error(data: bytes, reason: str) -> None:
    with pytest.raises(BadResponseError, match=reason):
        parse(data)


async def _against(answer: bytes, *, hold: float = 0.0, timeout: float = 5.0) -> object:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(hold)
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await request_once("GET", f"http://127.0.0.1:{port}/", tls=None, timeout=timeout)
    finally:
        server.close()


def test_over_a_connection() -> None:
    answer = asyncio.run(_against(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    assert getattr(answer, "status", None) == 200
    # the server closing after part of the body: an error
    with pytest.raises(BadResponseError, match="cut short"):
        asyncio.run(_against(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nok"))
    # a server slower than the timeout: TimeoutError, an OSError as the load client counts it
    with pytest.raises(TimeoutError):
        asyncio.run(_against(b"HTTP/1.1 200 OK\r\n\r\n", hold=2, timeout=0.3))
