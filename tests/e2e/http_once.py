"""One HTTP/1.1 request on a new connection (`Connection: close`), for the load client.

The load client opens a connection per request (many independent clients, as behind a load
balancer) and keeps only the status and a few headers of each answer. With httpx the load
client spent about 5.2 ms of the controller's CPU on each such request over TLS, with this
about 2.5 (session 24, docs/benchmarks.md): over the e2e suite's hundred thousand requests
that is minutes of a core, on a machine the test lanes share. The answer is read to the
end of the connection and checked whole: a body shorter than its Content-Length, or a
chunked body without its last chunk, is an error, as a cut connection is."""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class BadResponseError(Exception):
    """The server's answer was not a complete HTTP/1.x response."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case


def encode(method: str, url: str, body: Any = None) -> tuple[str, int, bool, bytes]:
    """(host, port, https, the request's bytes) for `method url`, with `body` as JSON."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    https = parts.scheme == "https"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    payload = b""
    if body is not None:
        payload = json.dumps(body).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
    return parts.hostname, parts.port or (443 if https else 80), https, request


def parse(data: bytes) -> Answer:
    """The status and headers of a whole response (everything the server sent)."""
    head, blank, body = data.partition(b"\r\n\r\n")
    if not blank:
        raise BadResponseError(f"no complete header in {len(data)} bytes")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    status = rest[:3]
    if not version.startswith("HTTP/1.") or not status.isdigit():
        raise BadResponseError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length")
    if length is not None and not length.isdigit():
        raise BadResponseError(f"not a Content-Length: {length[:40]!r}")
    if length is not None and len(body) < int(length):
        raise BadResponseError(f"body cut short: {len(body)} of {length} bytes")
    if "chunked" in headers.get("transfer-encoding", "").lower() and not body.endswith(
        b"0\r\n\r\n"
    ):
        raise BadResponseError("chunked body cut short")
    return Answer(int(status), headers)


@functools.cache
def _system_tls() -> ssl.SSLContext:
    return ssl.create_default_context()  # the system's CAs: read once, not per request


async def request_once(
    method: str, url: str, body: Any = None, *, tls: ssl.SSLContext | None, timeout: float
) -> Answer:
    """Send one request on a connection of its own; the whole exchange within `timeout`
    seconds. Raises OSError (TimeoutError, ssl.SSLError included) or BadResponseError."""
    host, port, https, request = encode(method, url, body)
    context = (tls or _system_tls()) if https else None

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname=host if https else None
        )
        try:
            writer.write(request)
            return await reader.read()  # to the end: the server closes after its answer
        finally:
            writer.close()

    return parse(await asyncio.wait_for(exchange(), timeout))
